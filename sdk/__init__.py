"""AcuLa Edge SDK: on-device body-sound features and models.  Never imports torch."""

from sdk.audio import AudioClip, AudioError, EmptyAudioError, NonFiniteAudioError, UnreadableAudioError, load_audio
from sdk.frontend import LogMelFrontend
from sdk.frontend_config import FrontendConfig

__version__ = "0.1.0"

__all__ = [
    "AudioClip",
    "AudioError",
    "EmptyAudioError",
    "FrontendConfig",
    "LogMelFrontend",
    "NonFiniteAudioError",
    "UnreadableAudioError",
    "load_audio",
]
