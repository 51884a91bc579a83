"""AcuLa Edge SDK: on-device body-sound screening and scoring.  Never imports torch.

    import sdk
    model = sdk.load("path/to/bundle")                 # or a packaged name
    clip = sdk.load_audio("recording.wav")
    print(model.screen(clip.samples, clip.sample_rate_hz).events)
"""

from sdk.audio import AudioClip, AudioError, EmptyAudioError, NonFiniteAudioError, UnreadableAudioError, load_audio
from sdk.bundle import BundleError
from sdk.frontend import LogMelFrontend
from sdk.frontend_config import FrontendConfig
from sdk.model import EmbedResult, Model, ScoreResult, ScreenResult, Stream, WindowResult, available_models, load

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
    "UnreadableAudioError",
    "WindowResult",
    "available_models",
    "load",
    "load_audio",
]
