"""Codec chunks on a Dask cluster (``runner.executor: dask``): the same jobs the local worker processes
run (:func:`taskcodec.codec_worker_job.encode_chunk`), scheduled, retried and load-balanced by Dask.

With no scheduler address a ``LocalCluster`` of ``workers`` single-threaded worker processes starts on
this machine; with one (``--scheduler tcp://host:8786``), the chunks go to that cluster's workers. Each
chunk carries its images (pickled with the job), and the workers write the streams into the store's
``streams/`` folder, which must therefore be the same path on every worker (a shared file system);
the records and metrics come back to this process, the store's only writer (SQLite stays single-writer,
and a stream is only known to the store once this process commits its record). A worker lost mid-chunk
has its chunk rescheduled on another worker by Dask itself; a chunk that keeps killing workers ends
the run with the scheduler's ``KilledWorker`` turned into a CodecError naming the chunk.
"""
from __future__ import annotations

import logging
from typing import Any

#: Each chunk is retried this many times after an exception (the worker-loss case needs no retry:
#: the scheduler reschedules the chunks of a lost worker, up to its own allowed-failures limit).
RETRIES = 1
WORKER_ENV = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}  # as the local workers: no oversubscription


def lost_worker_errors() -> tuple[type[BaseException], ...]:
    from distributed.scheduler import KilledWorker

    return (KilledWorker,)


class DaskPool:
    """The interface of :class:`taskcodec.worker_pool.WorkerPool`, on a Dask client started on first use."""

    reads_local_files = False  # workers may be on other machines: chunks carry their images
    on_demand = False  # asked for explicitly: never second-guessed by the runner

    def __init__(self, workers: int, scheduler: str | None = None):
        self.workers = workers
        self.scheduler = scheduler
        self._client: Any = None
        self._cluster: Any = None
        self._executor: Any = None

    def wanted(self, pending_work: int) -> bool:
        return pending_work > 0  # asked for explicitly: every chunk goes to the cluster

    @property
    def started(self) -> bool:
        return self._executor is not None

    def lost_worker_errors(self) -> tuple[type[BaseException], ...]:
        return lost_worker_errors()

    def start(self, modules) -> None:  # noqa: ARG002 - a cluster is started on first use only
        pass

    def get(self, pending_work: int):
        """A concurrent.futures executor on the cluster (its futures are ordinary ``Future`` objects)."""
        if not self.wanted(pending_work):
            return None
        if self._executor is None:
            try:
                from distributed import Client, LocalCluster
            except ImportError:
                from .errors import ConfigError

                raise ConfigError("runner.executor 'dask' needs the dask and distributed packages: "
                                  "pip install 'taskcodec[dask]'") from None
            if self.scheduler:
                self._client = Client(self.scheduler)
            else:
                self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                             dashboard_address=None, silence_logs=logging.ERROR, env=WORKER_ENV)
                self._client = Client(self._cluster)
            self._executor = self._client.get_executor(pure=False, retries=RETRIES)
        return self._executor

    def close(self, kill: bool) -> None:  # noqa: ARG002 - the same on a kill: Dask cancels what is left
        client, cluster = self._client, self._cluster
        self._client = self._cluster = self._executor = None
        if client is not None:  # closing the client cancels its chunks still queued or running
            client.close()
        if cluster is not None:
            cluster.close()
