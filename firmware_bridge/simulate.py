"""A simulated stethoscope: a recording as a stream of protocol frames, with optional loss and corruption."""

from __future__ import annotations

import numpy as np
from acula.firmware_bridge.codecs import audio_codec
from acula.firmware_bridge.protocol import Codec, Flags, Frame


def stethoscope_frames(samples: np.ndarray, sample_rate_hz: int, codec: Codec = Codec.IMA_ADPCM,
                       frame_samples: int = 256, loss_rate: float = 0.0, corrupt_rate: float = 0.0,
                       seed: int = 0) -> tuple[list[bytes], dict[str, int]]:
    """samples: float in [-1, 1].  Returns the frames as sent on the wire and what was done to them."""
    rng = np.random.default_rng(seed)
    pcm = np.clip(np.round(np.asarray(samples) * 32767), -32768, 32767).astype(np.int16)
    encode = audio_codec(codec).encoder()  # one encoder a stream: ADPCM adapts across frames
    out, stats = [], {"frames": 0, "dropped": 0, "corrupted": 0}
    starts = range(0, pcm.size, frame_samples)
    for seq, start in enumerate(starts):
        block = pcm[start : start + frame_samples]
        payload = encode(block)
        last = start + frame_samples >= pcm.size
        wire = Frame(seq & 0xFFFF, int(start * 1e6 / sample_rate_hz), codec, sample_rate_hz, payload,
                     flags=Flags.END if last else 0).pack()
        stats["frames"] += 1
        if rng.random() < loss_rate and not last:
            stats["dropped"] += 1
            continue
        if rng.random() < corrupt_rate and not last:
            b = bytearray(wire)
            b[int(rng.integers(2, len(b)))] ^= 0xFF
            wire = bytes(b)
            stats["corrupted"] += 1
        out.append(wire)
    return out, stats


def feature_frames(samples: np.ndarray, sample_rate_hz: int = 16000, frames_per_packet: int = 4
                   ) -> tuple[list[bytes], np.ndarray]:
    """Feature mode: the device computes the project front end and sends int8 log-mel frames.

    Returns the wire frames and the exact (unquantised) features, shape (n_frames, n_mels)."""
    from acula.firmware_bridge.protocol import FEATURE_SCALE
    from acula.sdk.frontend import LogMelFrontend

    feats = LogMelFrontend()(np.asarray(samples, dtype=np.float32))
    q = np.clip(np.round(feats / FEATURE_SCALE), -127, 127).astype(np.int8)
    out = []
    for seq, start in enumerate(range(0, q.shape[0], frames_per_packet)):
        block = q[start : start + frames_per_packet]
        last = start + frames_per_packet >= q.shape[0]
        out.append(Frame(seq, 0, Codec.FEATURES_Q8, sample_rate_hz, block.tobytes(),
                         flags=Flags.FEATURES | (Flags.END if last else 0)).pack())
    return out, feats
