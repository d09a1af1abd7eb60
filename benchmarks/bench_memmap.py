"""Training from a memory-mapped data set: peak memory stays flat as the file grows.

A thin entry point: the code lives in ``scratchnn.bench.memmap`` (also the ``memmap`` section
of ``scratchnn bench``). Run::

    python benchmarks/bench_memmap.py [--sizes 1,4,16] [--dir /tmp/scratchnn-memmap]
"""
from pathlib import Path

from scratchnn.bench.memmap import main

if __name__ == "__main__":
    main(default_json=str(Path(__file__).resolve().parent / "results" / "bench_memmap.json"))
