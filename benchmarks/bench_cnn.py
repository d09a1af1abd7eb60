"""The CNN benchmark alone: scratchnn against PyTorch CPU eager on the same network, same data, same weights.

A thin entry point: the code lives in ``benchlab.cnn_bench`` (the CNN is also the ``cnn``
section of ``bench_mlp.py``). Run::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_cnn.py [--threads 1,2] [--rounds 3]
"""
from pathlib import Path

from benchlab.cnn_bench import main

if __name__ == "__main__":
    main(default_json=str(Path(__file__).resolve().parent / "results" / "bench_cnn.json"))
