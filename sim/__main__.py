"""`python -m sim ...` is the `ttvsim` command."""

import sys

from .experiment.cli import main

sys.exit(main())
