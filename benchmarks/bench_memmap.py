"""Training from a memory-mapped data set: peak memory stays flat as the file grows.

A thin entry point: the code lives in ``benchlab.memmap`` (also the ``memmap`` section
of ``bench_mlp.py``). Run::

    python benchmarks/bench_memmap.py [--sizes 1,4,16] [--dir /tmp/scratchnn-memmap]
"""
from pathlib import Path

from benchlab.memmap import main

if __name__ == "__main__":
    main(default_json=str(Path(__file__).resolve().parent / "results" / "bench_memmap.json"))
