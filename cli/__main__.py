"""`python -m cli`: the same as the `hostchecker` console script."""

import sys

from .main import main

sys.exit(main())
