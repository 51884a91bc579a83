"""``acula info BUNDLE``: verify a bundle and describe it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sdk.bundle import BundleError, describe, read_bundle


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acula info", description=__doc__)
    parser.add_argument("bundle", help="bundle directory or zip")
    args = parser.parse_args(argv)
    try:
        bundle = read_bundle(args.bundle)
    except BundleError as exc:
        print(f"acula info: {exc}", file=sys.stderr)
        return 1
    print(describe(bundle))
    return 0
