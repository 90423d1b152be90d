"""Run the ``hnv`` command as ``python -m openhnv``."""

import sys

from openhnv.cli import main

sys.exit(main())
