"""``python -m tinygan ...``: the command line (see tinygan.cli)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
