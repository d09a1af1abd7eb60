"""The benchmark suite: scratchnn vs PyTorch (CPU, eager) vs a minimal NumPy loop.

Run it from a checkout with ``python benchmarks/bench_mlp.py`` (it lives beside the library, not in it); see
``benchmarks/README.md`` for every section and column. Modules:

* ``common``: data, thread control, FLOP counting, memory budget, tables, subprocess commands;
* ``machine``: GEMM peak, RSS high-water marks, other processes' CPU load, the environment record;
* ``mlp``: the MLP workloads and the minimal NumPy floor; ``cnn``: the CNN workload;
* ``runners``: the scratchnn and PyTorch contenders of any workload;
* ``measure``: alternating rounds, workloads, inference, scaling, the memory subprocess;
* ``report``: console tables, plots, the issue's targets; ``suite``: the command line;
* ``memmap``: training from a memory-mapped file; ``profile_fit``: where ``fit`` spends its time.

Importing this package loads nothing but NumPy; PyTorch, threadpoolctl and matplotlib are
imported only when a measurement or a plot needs them.
"""
