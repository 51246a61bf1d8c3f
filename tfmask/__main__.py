"""`python -m tfmask ...` is the `tfmask` command."""

import sys

from tfmask.cli import main

sys.exit(main())
