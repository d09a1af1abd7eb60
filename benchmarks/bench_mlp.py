"""The benchmark suite (MLPs, the CNN, inference, scaling): scratchnn vs PyTorch vs a minimal NumPy loop.

A thin entry point: the suite lives in ``benchlab``.
Run (from the repository root; see benchmarks/README.md for every section and column)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_mlp.py
    python benchmarks/bench_mlp.py --quick                 # subsets of the epoch, 2 rounds
    python benchmarks/bench_mlp.py --threads 1 --rounds 5 --json out.json --isolated
"""
from pathlib import Path

from benchlab.suite import main

if __name__ == "__main__":
    main(default_json=str(Path(__file__).resolve().parent / "results" / "bench_mlp.json"))
