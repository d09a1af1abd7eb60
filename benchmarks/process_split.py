"""Probe for issue 18: the CNN's two-core step with the batch split across two worker processes
(gradients averaged through shared memory) against the engine's two threads, one thread, and
independent replicas (the bound). Not a library feature.

A thin entry point: the code lives in ``benchlab.process_split``. Run::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/process_split.py --network cnn --samples 3200 --rounds 5
"""
from benchlab.process_split import main

if __name__ == "__main__":
    main()
