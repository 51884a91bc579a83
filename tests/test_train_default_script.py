"""scripts/train_default.sh refuses a candidate recipe (ALIGN_CONFIG, DISTILL_CONFIG or KD_ALIGN_CONFIGS set) unless
WORK_DIR and a BUNDLE_DIR other than the shipped default's are given; the refusal comes before any step runs.  The
script runs from a copy in a scratch tree (no .venv there), so a guard that let a run through could not train or
overwrite anything: it would fail on the missing interpreter instead of refusing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("var", ["ALIGN_CONFIG", "DISTILL_CONFIG", "KD_ALIGN_CONFIGS", "HEAD_ALIGN_CONFIG"])
@pytest.mark.parametrize("args", [[], ["data", "work"], ["data", "work", "sdk/models/default"]])
def test_a_candidate_recipe_never_aims_at_the_shipped_bundle(var, args, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("ALIGN_CONFIG", "DISTILL_CONFIG", "KD_ALIGN_CONFIGS", "HEAD_ALIGN_CONFIG")}
    env[var] = "configs/none.json"
    (tmp_path / "scripts").mkdir()
    (tmp_path / "sdk" / "models" / "default").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "train_default.sh", tmp_path / "scripts")
    r = subprocess.run(["bash", "scripts/train_default.sh", *args], env=env, cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "never overwrites the shipped default" in r.stderr
    assert "== corpus" not in r.stdout
