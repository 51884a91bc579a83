import sys

from acula.sdk.cli import main

sys.exit(main())
