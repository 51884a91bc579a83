"""Rewrite imports of the six project packages to their installed names under ``acula``.

    python scripts/namespace_imports.py            # rewrite in place, print each change
    python scripts/namespace_imports.py --check    # change nothing; exit 1 if anything is left to rewrite

The folders stay at the root of the checkout (sdk/, aligner/, distill/, export/, firmware_bridge/,
benchmarks/) and install as acula.sdk, acula.aligner, ... (pyproject.toml, [tool.setuptools]).  Every import,
module-name string and ``python -m`` command must name them that way, in code and in documents alike:

    from sdk.model import load           ->  from acula.sdk.model import load
    import sdk                           ->  from acula import sdk
    import aligner.probe as probe        ->  import acula.aligner.probe as probe
    import numpy as np, sdk, sdk.cli     ->  import numpy as np, acula.sdk as sdk, acula.sdk.cli
    "sdk.model.PACKAGE_MODELS"           ->  "acula.sdk.model.PACKAGE_MODELS"
    resources.files("aligner")           ->  resources.files("acula.aligner")
    python -m sdk demo / "-m", "sdk"     ->  python -m acula demo / "-m", "acula"
    python -m benchmarks.readme          ->  python -m acula.benchmarks.readme

Run it again after merging a branch that still uses the old names: it is idempotent (a second run changes
nothing), reads the files git tracks plus untracked ones it does not ignore, and leaves alone the recorded
results (benchmarks/results/, benchmarks/baselines/: they say what was run at the time).  An import statement
it cannot rewrite is listed for a person to edit; in a checkout the old names refuse to import, with a
sentence that names this script.  Afterwards ``ruff check --fix`` sorts the moved imports, and a line the
rewrite made longer than 120 characters wants a hand.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

PACKAGES = ("sdk", "aligner", "distill", "export", "firmware_bridge", "benchmarks")
ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = {".py", ".sh", ".md", ".in"}
EXTRA_FILES = {".ci/run"}
# recorded outputs say what was run at the time; the generators that write them are rewritten
SKIP_PREFIXES = ("benchmarks/results/", "benchmarks/baselines/")
SKIP_EXCEPT = {"benchmarks/results/README.md"}
SKIP_FILES = {"scripts/namespace_imports.py", "tests/test_namespace.py"}  # they spell the old names on purpose

_PKG = "|".join(PACKAGES)
# a statement starts a line, follows ';', opens a string (code run with -c) or follows an escaped newline in one
_STMT = r"(?:^[ \t]*|(?<=;)[ \t]*|(?<=[\"'])|(?<=\\n))"
FROM_RE = re.compile(_STMT + rf"from[ \t]+(?P<pkg>{_PKG})(?P<rest>(?:\.\w+)*)[ \t]+import\b", re.M)
IMPORT_RE = re.compile(_STMT + r"import[ \t]+(?P<names>[^\n;\"'\\#()]+)", re.M)
DASH_M_RE = re.compile(rf"(?P<lead>-m[ \t]+|[\"']-m[\"'],[ \t]*[\"'])(?P<pkg>{_PKG})(?P<rest>(?:\.\w+)*)\b")
DOTTED_STR_RE = re.compile(rf"(?P<q>[\"'])(?P<pkg>{_PKG})\.(?=[A-Za-z_])")
FILES_RE = re.compile(rf"(?P<lead>\bfiles\([ \t]*)(?P<q>[\"'])(?P<pkg>{_PKG})(?P=q)")
_ALIAS_RE = re.compile(r"^(?P<name>[\w.]+)(?:[ \t]+as[ \t]+(?P<alias>\w+))?$")


def _top(name: str) -> str:
    return name.split(".")[0]


def _prefix_pkg(m: re.Match[str]) -> str:
    """The match with ``acula.`` put before the package name it captured."""
    i = m.start("pkg") - m.start(0)
    return f"{m.group(0)[:i]}acula.{m.group(0)[i:]}"


def _rewrite_import(m: re.Match[str]) -> str:
    """One ``import a, b.c as d`` statement: each old name moves under acula, keeping the names it binds."""
    parts = m["names"].split(",")
    parsed = [_ALIAS_RE.match(part.strip()) for part in parts]
    if not all(parsed) or not any(_top(p["name"]) in PACKAGES for p in parsed if p):
        return m.group(0)
    head = m.group(0)[: m.start("names") - m.start(0)]
    first = parsed[0]
    if len(parts) == 1 and first and first["name"] in PACKAGES and not first["alias"]:
        trail = parts[0][len(parts[0].rstrip()):]
        return f"{head[: head.index('import')]}from acula import {first['name']}{trail}"
    out = []
    for part, p in zip(parts, parsed, strict=True):
        assert p is not None
        lead, trail = part[: len(part) - len(part.lstrip())], part[len(part.rstrip()):]
        name, alias = p["name"], p["alias"]
        if _top(name) in PACKAGES:
            alias = alias or (name if name in PACKAGES else None)  # `import numpy as np, sdk` binds sdk: keep it
            name = f"acula.{name}"
        out.append(f"{lead}{name}{f' as {alias}' if alias else ''}{trail}")
    return head + ",".join(out)


def _rewrite_dash_m(m: re.Match[str]) -> str:
    target = "acula" if m["pkg"] == "sdk" and not m["rest"] else f"acula.{m['pkg']}{m['rest']}"
    return m["lead"] + target


RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (FROM_RE, _prefix_pkg),
    (IMPORT_RE, _rewrite_import),
    (DASH_M_RE, _rewrite_dash_m),
    (DOTTED_STR_RE, _prefix_pkg),
    (FILES_RE, _prefix_pkg),
)


def rewrite(text: str) -> str:
    """``text`` with every rule applied; applying it again changes nothing."""
    for pattern, repl in RULES:
        text = pattern.sub(repl, text)
    return text


def leftovers(text: str) -> list[int]:
    """Line numbers (1-based) of import statements for a person to look at after :func:`rewrite`.

    Those that still name an old package (a form the rules do not parse), and those like
    ``import acula.sdk.check`` that bind ``acula`` where the file goes on to use ``sdk.check``.
    """
    lines = []
    for m in IMPORT_RE.finditer(text):
        parsed = [_ALIAS_RE.match(part.strip()) for part in m["names"].split(",")]
        names = [p["name"] if p else part.strip() for p, part in zip(parsed, m["names"].split(","), strict=True)]
        bound = {p["alias"] or _top(p["name"]) for p in parsed if p}
        unbound = {n.split(".")[1] for n, p in zip(names, parsed, strict=True)
                   if p and n.startswith("acula.") and n.count(".") > 1 and not p["alias"]} - bound
        unbound = {pkg for pkg in unbound if not re.search(rf"from acula import [^\n]*\b{pkg}\b|\bas {pkg}\b", text)}
        if any(_top(n) in PACKAGES for n in names) or any(
                re.search(rf"(?<![\w.]){pkg}\.\w", text) for pkg in unbound):
            lines.append(text.count("\n", 0, m.start()) + 1)
    return lines


def project_files(root: Path) -> list[Path]:
    """Files git tracks plus untracked ones it does not ignore, that may name the packages."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=root, check=True,
                            capture_output=True, text=True).stdout.splitlines()
    out = []
    for rel in sorted(set(listed)):
        if rel in SKIP_FILES or (rel.startswith(SKIP_PREFIXES) and rel not in SKIP_EXCEPT):
            continue
        if Path(rel).suffix in SUFFIXES or rel in EXTRA_FILES:
            path = root / rel
            if path.is_file():
                out.append(path)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/namespace_imports.py", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file would change")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to rewrite")
    args = parser.parse_args(argv)
    changed = flagged = 0
    for path in project_files(args.root):
        text = path.read_text(encoding="utf-8")
        new = rewrite(text)
        rel = path.relative_to(args.root).as_posix()
        if new != text:
            changed += 1
            for n, (a, b) in enumerate(zip(text.splitlines(), new.splitlines(), strict=True), start=1):
                if a != b:
                    print(f"{rel}:{n}: {a.strip()}\n{' ' * len(f'{rel}:{n}:')} -> {b.strip()}")
            if not args.check:
                path.write_text(new, encoding="utf-8")
        for n in leftovers(new):
            flagged += 1
            print(f"{rel}:{n}: check this import by hand (an old name, or a name it no longer binds)")
    verb = "would change" if args.check else "changed"
    print(f"{changed} file(s) {verb}, {flagged} import(s) to check by hand", file=sys.stderr)
    return 1 if args.check and (changed or flagged) else 0


if __name__ == "__main__":
    raise SystemExit(main())
