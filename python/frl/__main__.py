"""``python -m frl`` is ``python -m frl.ray``."""

import sys

from .ray import main

sys.exit(main())
