"""Training throughput of the presets' full recipes (augmentation included), scratchnn against PyTorch.

A thin entry point: the code lives in ``benchlab.presets``. Run::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_presets.py [--threads 2] [--rounds 3]
"""
from pathlib import Path

from benchlab.presets import main

if __name__ == "__main__":
    main(default_json=str(Path(__file__).resolve().parent / "results" / "bench_presets.json"))
