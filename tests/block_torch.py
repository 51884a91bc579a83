"""pytest plugin: make torch, torchaudio and transformers unimportable for the whole session.

    python -m pytest -p tests.block_torch tests/test_model.py ...

CI runs the SDK's tests this way, so they prove the device side needs none of them.
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder

BLOCKED = {"torch", "torchaudio", "transformers"}


class _Block(MetaPathFinder):
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is blocked: the SDK must run without it", name=name)
        return None


if not any(isinstance(f, _Block) for f in sys.meta_path):
    sys.meta_path.insert(0, _Block())
for mod in [m for m in sys.modules if m.split(".")[0] in BLOCKED]:
    del sys.modules[mod]
