"""``python -m acula``: the same command line as the ``acula`` console script."""

import sys

from acula.sdk.cli import main

sys.exit(main())
