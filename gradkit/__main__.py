"""``python -m gradkit``: see gradkit/cli.py."""
import sys

from .cli import main

sys.exit(main())
