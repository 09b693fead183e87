"""Entry point: ``python run_bot.py [--config PATH] COMMAND …`` (see ``--help``)."""

import sys

from bot.cli import main

if __name__ == "__main__":
    sys.exit(main())
