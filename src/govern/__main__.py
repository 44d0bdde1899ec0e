"""``python -m govern`` runs the command line."""

import sys

from govern.cli import main

sys.exit(main())
