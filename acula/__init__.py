"""AcuLa Edge: on-device body-sound screening and scoring.  ``import acula`` never imports torch.

    import acula
    model = acula.load("default")                      # a packaged name or a bundle folder
    clip = acula.load_audio("recording.wav")
    print(model.screen(clip.samples, clip.sample_rate_hz).events)

One top-level package.  acula.sdk is the device side (its public API is re-exported here) and
acula.firmware_bridge the stethoscope bridge; acula.aligner, acula.distill, acula.export and acula.benchmarks
are the server side and need the [train] / [export] extras.  The wheel puts them inside this folder
(pyproject.toml, [tool.setuptools]); a source checkout keeps them as the folders sdk/, aligner/, ... beside
it, reached through ``__path__``.
"""

from pathlib import Path


def _checkout_root(here: Path) -> Path | None:
    """The source checkout whose acula/ folder is ``here``, or None where the subpackages lie inside it (a wheel).

    Only a folder holding this project's pyproject.toml and sdk/ qualifies, so an installed acula never
    reaches into site-packages, where another distribution's top-level ``sdk`` may live.
    """
    if (here / "sdk").is_dir():
        return None
    root = here.parent
    pyproject = root / "pyproject.toml"
    if not ((root / "sdk" / "__init__.py").is_file() and pyproject.is_file()):
        return None
    return root if 'name = "acula-edge"' in pyproject.read_text(encoding="utf-8") else None


_root = _checkout_root(Path(__file__).resolve().parent)
if _root is not None and str(_root) not in __path__:
    __path__.append(str(_root))

# the SDK's public API (sdk/__init__.py's __all__ owns the list), after __path__ reaches sdk/ in a checkout
from acula import sdk as _sdk  # noqa: E402
from acula.sdk import *  # noqa: E402, F403
from acula.sdk import __version__  # noqa: E402

#: the SDK's public names (sdk/__init__.py owns the list) and the version
__all__ = ["__version__"]
__all__ += _sdk.__all__
