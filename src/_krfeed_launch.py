"""The ``krfeed`` command's entry point.

Importing krfeed takes about half a second; a Ctrl-C or SIGTERM in that time would reach
Python's defaults (a KeyboardInterrupt traceback, or a silent exit 143). Until the CLI is
imported, both end the command quietly with exit 130 ("interrupted before anything
started"); then the defaults are back and the CLI's own handling applies.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType


def _early(signum: int, frame: FrameType | None) -> None:
    os.write(2, b"krfeed: interrupted\n")
    os._exit(130)


def main() -> None:
    """Run the ``krfeed`` command."""
    signal.signal(signal.SIGINT, _early)
    signal.signal(signal.SIGTERM, _early)
    from krfeed.cli import main as cli_main

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    cli_main()
    sys.exit(0)


if __name__ == "__main__":
    main()
