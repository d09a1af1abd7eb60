"""Where trials run: a pool of processes or threads, or a Dask cluster."""
from __future__ import annotations

import contextlib
import os

from ..errors import InvalidTypeError, MissingDependencyError
from .trials import _failed_record, _init_worker, _single_thread_blas_env, run_trial


def _dask_client(scheduler, n_workers):
    """``(client, things to close afterwards)`` for a scheduler address, a Client, or None."""
    try:
        import distributed
    except ImportError:
        raise MissingDependencyError("executor='dask' needs Dask's distributed scheduler: "
                          "pip install 'scratchnn[dask]'  (or pip install 'dask[distributed]')") from None
    if isinstance(scheduler, distributed.Client):
        return scheduler, []
    if isinstance(scheduler, str):
        client = distributed.Client(scheduler)
        return client, [client]
    if scheduler is None:
        try:
            return distributed.get_client(), []
        except ValueError:  # no client yet: a cluster on this machine
            cluster = distributed.LocalCluster(n_workers=n_workers or os.cpu_count(), threads_per_worker=1)
            client = distributed.Client(cluster)
            return client, [client, cluster]
    raise InvalidTypeError(f"scheduler must be a Dask scheduler address (str), a distributed.Client or None, "
                    f"received {type(scheduler).__name__}")


def _run_pool(kind, train_fn, pending, n_workers, on_done):
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed

    workers = max(1, min(n_workers or os.cpu_count() or 1, len(pending)))
    if kind == "process":
        import multiprocessing

        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker)
    else:
        pool = ThreadPoolExecutor(workers, thread_name_prefix="scratchnn-trial")
    with pool, (_single_thread_blas_env() if kind == "process" else contextlib.nullcontext()):
        futures = {pool.submit(run_trial, train_fn, cfg, trial): (trial, cfg) for trial, cfg in pending}
        try:
            for fut in as_completed(futures):
                trial, cfg = futures[fut]
                try:
                    rec = fut.result()
                except Exception as e:  # noqa: BLE001 - a worker crashed; the trial failed, not the search
                    rec = _failed_record(trial, cfg, e)
                on_done(rec)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _run_dask(train_fn, pending, n_workers, scheduler, on_done):
    import distributed

    client, owned = _dask_client(scheduler, n_workers)
    futures = {}
    try:
        for trial, cfg in pending:
            fut = client.submit(run_trial, train_fn, cfg, trial, pure=False,
                                key=f"scratchnn-trial-{trial}-{os.urandom(4).hex()}")
            futures[fut] = (trial, cfg)
        for fut in distributed.as_completed(list(futures)):
            trial, cfg = futures[fut]
            try:
                rec = fut.result()
            except Exception as e:  # noqa: BLE001 - e.g. KilledWorker
                rec = _failed_record(trial, cfg, e)
            on_done(rec)
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        futures.clear()  # release the results before a cluster we started goes away
        for obj in owned:  # our client first, then our cluster
            obj.close()
