"""``python -m ui`` runs the scenesearch command line."""

import sys

from ui.cli import main

sys.exit(main())
