"""One top-level package, acula: the folders install inside it and a checkout reaches them the same way."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import acula
from acula import sdk

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("sdk", "aligner", "distill", "export", "firmware_bridge", "benchmarks")
SPEC = importlib.util.spec_from_file_location("namespace_imports", ROOT / "scripts" / "namespace_imports.py")
assert SPEC is not None and SPEC.loader is not None
namespace_imports = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(namespace_imports)
NOT_PACKAGES = (ROOT / "sdk" / "web" / "node_modules", ROOT / "sdk" / "web" / "model")  # npm's, generated


def pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("folder", FOLDERS)
def test_a_checkout_finds_each_folder_under_acula(folder):
    spec = importlib.util.find_spec(f"acula.{folder}")
    assert spec is not None and spec.origin == str(ROOT / folder / "__init__.py")


def package_name(folder: Path) -> str:
    return "acula." + ".".join(folder.relative_to(ROOT).parts)


def test_pyproject_installs_every_python_and_data_folder_inside_acula_and_nothing_else():
    tool = pyproject()["tool"]["setuptools"]
    assert tool["package-dir"] == {f"acula.{f}": f for f in FOLDERS}
    code = {p.parent for f in FOLDERS for p in (ROOT / f).rglob("*.py")
            if not any(p.is_relative_to(skip) for skip in NOT_PACKAGES)}
    data = {p.parent for key, globs in tool["package-data"].items() for g in globs
            for p in (ROOT / Path(*key.split(".")[1:])).glob(g) if "__pycache__" not in p.parts}
    assert data, "package data: none found"
    expected = {"acula"} | {package_name(d) for d in code | data}
    assert set(tool["packages"]) == expected, "pyproject.toml [tool.setuptools] packages: add or remove these"
    assert all(key.startswith("acula.") for key in tool["package-data"])
    assert pyproject()["project"]["scripts"] == {"acula": "acula.sdk.cli:main"}


def test_import_acula_is_the_sdk_api():
    assert set(acula.__all__) == set(sdk.__all__) | {"__version__"}
    assert all(getattr(acula, name) is getattr(sdk, name) for name in sdk.__all__)
    assert acula.__version__ == sdk.__version__ == pyproject()["project"]["version"]


def test_an_installed_acula_never_reaches_beside_itself(tmp_path):
    site = tmp_path / "site-packages"
    (site / "sdk").mkdir(parents=True)  # another distribution's top-level sdk
    (site / "sdk" / "__init__.py").write_text("")
    (site / "acula" / "sdk").mkdir(parents=True)
    assert acula._checkout_root(site / "acula") is None
    shutil.rmtree(site / "acula" / "sdk")  # even without its subpackages, no pyproject.toml: not a checkout
    assert acula._checkout_root(site / "acula") is None
    (site / "pyproject.toml").write_text('[project]\nname = "someone-else"\n')
    assert acula._checkout_root(site / "acula") is None
    assert acula._checkout_root(ROOT / "acula") == ROOT


@pytest.mark.parametrize("code", ["import sdk", "import aligner.train", "from distill import train"])
def test_old_top_level_names_refuse_to_import_with_a_sentence(code):
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode != 0
    assert "installs as acula." in result.stderr and "scripts/namespace_imports.py" in result.stderr


def test_python_dash_m_acula_is_the_command_line():
    result = subprocess.run([sys.executable, "-m", "acula", "--version"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(sdk.__version__)


def test_rewrite_moves_every_form_under_acula_and_is_idempotent():
    old = "\n".join([
        "from sdk.model import load",
        "import sdk  # noqa: E402",
        "import aligner.probe as probe",
        'code = "import numpy as np, sdk, sdk.cli\\nfrom export import cli"',
        'monkeypatch.setattr("sdk.bundle.PINNED_SHA256", "0")',
        'resources.files("aligner").joinpath("tasks.json")',
        'subprocess.run([sys.executable, "-m", "sdk", "--help"])',
        "python -m sdk demo; python -m benchmarks.readme",
        '"distill" and prose from sdk/web stay',
    ])
    new = namespace_imports.rewrite(old)
    assert new.splitlines() == [
        "from acula.sdk.model import load",
        "from acula import sdk  # noqa: E402",
        "import acula.aligner.probe as probe",
        'code = "import numpy as np, acula.sdk as sdk, acula.sdk.cli\\nfrom acula.export import cli"',
        'monkeypatch.setattr("acula.sdk.bundle.PINNED_SHA256", "0")',
        'resources.files("acula.aligner").joinpath("tasks.json")',
        'subprocess.run([sys.executable, "-m", "acula", "--help"])',
        "python -m acula demo; python -m acula.benchmarks.readme",
        '"distill" and prose from sdk/web stay',
    ]
    assert namespace_imports.rewrite(new) == new
    assert namespace_imports.leftovers(new) == []


def test_rewrite_flags_an_import_that_no_longer_binds_the_name_used():
    new = namespace_imports.rewrite("import sdk.check\nsdk.check.main([])\n")
    assert new.startswith("import acula.sdk.check\n") and namespace_imports.leftovers(new) == [1]


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
def test_no_file_in_the_checkout_still_uses_the_old_names(capsys):
    assert namespace_imports.main(["--check", "--root", str(ROOT)]) == 0, capsys.readouterr().out
