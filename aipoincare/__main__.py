"""``python -m aipoincare``: the same as the ``aipoincare`` command."""

import sys

from .cli import main

sys.exit(main())
