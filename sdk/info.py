"""``acula info BUNDLE``: verify a bundle (a packaged name such as ``default``, a directory or a zip) and
describe it, with its manifest sha256: the digest to pin with ``sdk.load(path, sha256=...)`` or ``--sha256``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from acula.sdk.bundle import BundleError, describe, read_bundle


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acula info", description=__doc__)
    parser.add_argument("bundle", help="packaged bundle name (e.g. default), bundle directory or zip")
    parser.add_argument("--sha256", help="manifest digest the bundle must have (refused otherwise)")
    parser.add_argument("--public-key", help="Ed25519 public key (PEM or 32 raw bytes) its manifest.sig must "
                                             "verify against (needs: pip install cryptography)")
    args = parser.parse_args(argv)
    from acula.sdk.model import _resolve

    try:
        bundle = read_bundle(_resolve(args.bundle), args.sha256, args.public_key)
    except (BundleError, OSError) as exc:
        print(f"acula info: {exc}", file=sys.stderr)
        return 1
    print(describe(bundle))
    return 0
