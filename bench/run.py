"""Run the benchmarks: ``python bench/run.py [--quick] [--case NAME]`` from anywhere."""

import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, sys.path starts at bench/; the ``bench`` package lives one level up.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.suite import main

    sys.exit(main())
