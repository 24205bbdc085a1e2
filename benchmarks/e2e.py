"""End to end: the simulator's benchmark mode → Feed → a no-op consumer, records/s and
receive→deliver latency p50/p99, beside a raw aiohttp receive loop on the same frames.

The same run as ``benchmarks/stream.py`` (and the ``stream`` rows of ``make bench``).

    python benchmarks/e2e.py [--quick] [--json]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stream import main

if __name__ == "__main__":
    main()
