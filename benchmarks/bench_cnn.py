"""The CNN benchmark alone: scratchnn against PyTorch CPU eager on the same network, same data, same weights.

A thin entry point: the code lives in ``scratchnn.bench.cnn`` (the CNN is also the ``cnn``
section of ``scratchnn bench`` / ``bench_mlp.py``). Run::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_cnn.py [--threads 1,2] [--rounds 3]
"""
from pathlib import Path

from scratchnn.bench.cnn import main

if __name__ == "__main__":
    main(default_json=str(Path(__file__).resolve().parent / "results" / "bench_cnn.json"))
