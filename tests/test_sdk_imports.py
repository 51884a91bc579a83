"""The device side must run without torch, torchaudio or transformers."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCKER = textwrap.dedent(
    """
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"torch", "torchaudio", "transformers"}:
                raise ImportError(f"{name} is blocked in this test")
            return None
    sys.meta_path.insert(0, Block())
    """
)


def run_blocked(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code)], capture_output=True, text=True)


def test_blocker_really_blocks_torch():
    result = run_blocked("import torch")
    assert result.returncode != 0 and "blocked" in result.stderr


def test_sdk_imports_and_computes_features_with_torch_blocked():
    result = run_blocked(
        """
        import numpy as np, acula.sdk as sdk, acula.sdk.cli, acula.sdk.demo, acula.sdk.check, acula.sdk.synth
        from acula.sdk.frontend import LogMelFrontend
        assert LogMelFrontend()(np.zeros(16000, dtype=np.float32)).shape == (30, 64)
        assert not any(m.split(".")[0] in {"torch", "transformers"} for m in sys.modules)
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_import_acula_brings_the_sdk_api_and_nothing_of_the_server_side_with_torch_blocked():
    result = run_blocked(
        """
        import acula
        assert acula.load is acula.sdk.load and acula.Stream is acula.sdk.Stream
        assert not any(m.split(".")[0] in {"torch", "torchaudio", "transformers"} for m in sys.modules)
        assert not any(m.split(".")[:2] in (["acula", "aligner"], ["acula", "distill"], ["acula", "export"])
                       for m in sys.modules)
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_acula_demo_runs_with_torch_blocked(tmp_path):
    plot = tmp_path / "demo.png"
    result = run_blocked(f"from acula.sdk.cli import main; raise SystemExit(main(['demo', '--duration-s', '3', "
                         f"'--plot', {str(plot)!r}]))")
    assert result.returncode == 0, result.stderr
    from acula.sdk.model import available_models

    if "default" in available_models():
        assert "cough events:" in result.stdout and "latency per hop" in result.stdout
    else:
        assert "max abs difference 0.00e+00" in result.stdout
