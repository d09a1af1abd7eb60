"""How fast can plain NumPy train the headline MLP? The suite's floor against a leaner loop
(every buffer preallocated, every update in place), scratchnn and PyTorch, alternating epochs.

A thin entry point: the code lives in ``benchlab.floor``. Run::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/floor_variants.py --threads 1,2 --data-dir /work/shared/data/mnist
"""
from benchlab.floor import main

if __name__ == "__main__":
    main()
