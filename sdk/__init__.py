"""AcuLa Edge SDK: on-device body-sound screening and scoring.  Never imports torch.

    import acula                                       # re-exports this package's API
    model = acula.load("path/to/bundle")               # or a packaged name
    clip = acula.load_audio("recording.wav")
    print(model.screen(clip.samples, clip.sample_rate_hz).events)
"""

from acula.sdk.audio import (
    AudioClip,
    AudioError,
    EmptyAudioError,
    NonFiniteAudioError,
    StreamEndedError,
    UnreadableAudioError,
    load_audio,
)
from acula.sdk.bundle import BundleError
from acula.sdk.frontend import LogMelFrontend
from acula.sdk.frontend_config import FrontendConfig
from acula.sdk.model import EmbedResult, Model, ScoreResult, ScreenResult, Stream, WindowResult, available_models, load

if __name__ != "acula.sdk":  # a second name would load a second copy of every module, with its own state
    raise ImportError(f"{__name__} installs as acula.sdk: import it by that name, "
                      "run the command line as python -m acula; scripts/namespace_imports.py rewrites old imports")

__version__ = "0.1.0"

__all__ = [
    "AudioClip",
    "AudioError",
    "BundleError",
    "EmbedResult",
    "EmptyAudioError",
    "FrontendConfig",
    "LogMelFrontend",
    "Model",
    "NonFiniteAudioError",
    "ScoreResult",
    "ScreenResult",
    "Stream",
    "StreamEndedError",
    "UnreadableAudioError",
    "WindowResult",
    "available_models",
    "load",
    "load_audio",
]
