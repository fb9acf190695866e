"""``python -m scenesearch.ui`` runs the scenesearch command line."""

import sys

from scenesearch.ui.cli import main

sys.exit(main())
