"""``python -m bot.sandbox --port N``: the sandbox Bot API server on its own."""

import sys

from bot.sandbox.server import main

if __name__ == "__main__":
    sys.exit(main())
