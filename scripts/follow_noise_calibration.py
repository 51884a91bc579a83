"""How close ``aligner.augment.follow_noise`` comes to a real 8 kHz mu-law codec on heart recordings.

    python scripts/follow_noise_calibration.py [--data ../shared/data] [--n 10]

For every 20th PhysioNet 2016 recording (the first ``--n``; their first 6 s), the log-mel rise over the same
recording through ``phone8k`` (8 kHz and back, no mu-law), by groups of 8 mel bands: first for ``mulaw8k``
(``aligner.invariance``), then for ``follow_noise`` at 30, 38 and 45 dB added to the ``phone8k`` log-mel.  Audio
only; no model is involved.  The figures in ``aligner/augment.py``'s ``FOLLOW_NOISE_SNR_DB`` comment come from it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--n", type=int, default=10)
    args = parser.parse_args(argv)
    import torch
    from acula.aligner.augment import follow_noise
    from acula.aligner.invariance import apply_transform
    from acula.sdk.audio import load_audio
    from acula.sdk.frontend import LogMelFrontend

    files = sorted((Path(args.data) / "physionet2016" / "audio").glob("*.flac"))[: 20 * args.n : 20]
    if not files:
        raise SystemExit(f"no PhysioNet 2016 recordings under {args.data}")
    fe = LogMelFrontend()
    cfg = fe.config
    groups = range(0, cfg.n_mels, 8)
    gaps = []
    print("recording | what | dB rise over phone8k, mel bands " + " ".join(f"{g}-{g + 7}" for g in groups))
    for f in files:
        clip = load_audio(f)
        x = clip.samples.astype(np.float64)[: 6 * clip.sample_rate_hz]
        phone = fe(apply_transform("phone8k", x, clip.sample_rate_hz))
        rise = {"mulaw8k": (fe(apply_transform("mulaw8k", x, clip.sample_rate_hz)) - phone) * cfg.norm_std_db}
        for snr in (30.0, 38.0, 45.0):
            noisy = follow_noise(torch.from_numpy(phone)[None], cfg, torch.Generator().manual_seed(0), 1.0,
                                 (snr, snr))[0].numpy()
            rise[f"follow {snr:g} dB"] = (noisy - phone) * cfg.norm_std_db
        for what, r in rise.items():
            print(f"{f.name} | {what} | " + " ".join(f"{r[:, g:g + 8].mean():5.1f}" for g in groups))
        # the codec's own bands (24-47: about 0.5-2.6 kHz here), where both add noise
        gaps.append(float(np.abs(rise["mulaw8k"][:, 24:48] - rise["follow 30 dB"][:, 24:48]).mean()))
    print(f"mean |mulaw8k - follow 30 dB| over bands 24-47, per recording: {np.round(gaps, 1).tolist()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
