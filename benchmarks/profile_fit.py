"""Where does scratchnn's ``fit`` spend its time? The headline MLP (784-100-200-10, SGD 0.1, batch 32).

A thin entry point: the code lives in ``benchlab.profile_fit``. Run::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/profile_fit.py [--threads 1] [--samples 50000]

Writes ``benchmarks/results/profile_fit.{txt,json}``.
"""
from pathlib import Path

from benchlab.profile_fit import main

if __name__ == "__main__":
    main(default_out=str(Path(__file__).resolve().parent / "results" / "profile_fit"))
