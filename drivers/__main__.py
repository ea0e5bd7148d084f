"""``python -m drivers mock-device ...`` / ``python -m drivers rig ...`` (see drivers.cli)."""

import sys

from .cli import main

sys.exit(main())
