"""The codec worker processes of a run: spawning them, their lifetime, and what they can receive.

Workers are spawned (torch may already run threads in the parent, and fork would deadlock), tied
to the parent's life with Linux's PR_SET_PDEATHSIG so that none outlives a killed ``taskcodec run``,
and killed without waiting when a run is interrupted (SIGTERM unwinds like Ctrl-C while computing).
"""
from __future__ import annotations

import ctypes
import os
import pickle
import signal
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, Callable, Sequence

from .errors import CodecError, PluginError

# Spawning a worker costs about a second: not worth it for a handful of images.
MIN_POOL_WORK = 64
# With the worker count left to the runner (``on_demand``), workers are started only for coding work
# estimated to take longer than this in one process: each costs ~0.3-0.5 core-seconds of start-up
# (interpreter, imports), which the 3,137 tiny FER+ images at one JPEG quality (~0.2 s) never repay.
POOL_WORTH_SECONDS = 1.0
# ... and started before the images are digested (to overlap their start-up) only for at least this many
# image values (the first image's pixels x channels, times images and rate points): the Kodak sweep has
# 142 M, an LFW rate point 2.5 G, the FER+ test split at one rate point 7 M. Slower codecs on smaller data
# are found by timing their chunks.
PRESTART_IMAGE_VALUES = 32_000_000
_PR_SET_PDEATHSIG = 1


def make_pool(workers: int, executor: str = "local", scheduler: str | None = None, on_demand: bool = False):
    """The pool of a run: local worker processes, or a Dask cluster (taskcodec/dask_executor.py).
    ``on_demand``: the worker count was not asked for, so local workers start only where they pay."""
    if executor == "dask":
        from .dask_executor import DaskPool

        return DaskPool(workers, scheduler)
    return WorkerPool(workers, on_demand)


class WorkerPool:
    """A lazily spawned pool of ``workers`` processes (none when one worker is asked for).

    With ``on_demand`` (no worker count in the config or on the command line) the runner starts the
    workers only for work that repays their start-up (POOL_WORTH_SECONDS, PRESTART_IMAGE_VALUES); an explicit
    count of 2 or more always gets its processes (and the cross-process check of every chunk)."""

    reads_local_files = True  # the workers see this machine's files (taskcodec.image_transfer)

    def __init__(self, workers: int, on_demand: bool = False):
        self.workers = workers
        self.on_demand = on_demand
        self._executor: ProcessPoolExecutor | None = None

    @property
    def started(self) -> bool:
        return self._executor is not None

    def wanted(self, pending_work: int) -> bool:
        """Whether ``pending_work`` images are worth the workers."""
        return self.workers > 1 and pending_work >= MIN_POOL_WORK

    def lost_worker_errors(self) -> tuple[type[BaseException], ...]:
        """What a chunk's result raises when its worker died."""
        return (BrokenProcessPool,)

    def get(self, pending_work: int) -> ProcessPoolExecutor | None:
        """The executor (spawned on first use), or None to work in this process."""
        if not self.wanted(pending_work):
            return None
        return self._started()

    def start(self, modules: Sequence[str]) -> None:
        """Spawn the workers now and have each import ``modules``, so that their start-up (~0.3 s of
        interpreter and imports) overlaps this process loading and digesting the images."""
        if self.workers < 2:
            return
        executor = self._started()
        for _ in range(self.workers):  # the executor spawns one process per job queued while none is idle
            executor.submit(_import_modules, tuple(modules))

    def _started(self) -> ProcessPoolExecutor:
        if self._executor is None:
            import multiprocessing

            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                initargs=(os.getpid(),),
            )
        return self._executor

    def close(self, kill: bool) -> None:
        """Shut the workers down; with ``kill`` (interrupted) without waiting for running chunks."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        if kill:
            processes = list((getattr(executor, "_processes", None) or {}).values())
            executor.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                if process.is_alive():
                    process.kill()
            for process in processes:
                process.join(timeout=5)
        else:
            executor.shutdown(cancel_futures=True)


class CodingCostEstimate:
    """For an on-demand pool: each planned cell's seconds per image, timed on its chunks coded in this
    process, and whether the coding left would take longer here than POOL_WORTH_SECONDS.

    A cell counts as timed from its second chunk on: its first pays one-time costs (a codec library's
    import, a network's weights) that say nothing of the rest; a cell coded in one chunk counts by that
    chunk (an overestimate, which can only start the workers). Cells not timed yet count at the mean."""

    def __init__(self) -> None:
        self._chunks: dict[int, int] = {}  # cell -> chunks timed
        self._per_image: dict[int, float] = {}  # cell -> seconds per image of its latest timed chunk

    def wants_timing(self, cell: int) -> bool:
        return self._chunks.get(cell, 0) < 2

    def timed(self, cell: int, seconds: float, images: int, last: bool = False) -> None:
        """One chunk of ``cell`` took ``seconds`` for ``images``; ``last``: the cell has no more chunks."""
        self._chunks[cell] = self._chunks.get(cell, 0) + 1
        if self._chunks[cell] == 2 or last:
            self._per_image[cell] = seconds / max(1, images)

    def pool_pays(self, left: dict[int, int]) -> bool:
        """``left``: cell -> images it has left to encode."""
        if not self._per_image:
            return False
        mean = sum(self._per_image.values()) / len(self._per_image)
        return sum(self._per_image.get(cell, mean) * n for cell, n in left.items()) > POOL_WORTH_SECONDS


def check_picklable(codecs: Sequence[tuple[Any, str]], image_metrics: Sequence[Any]) -> None:
    """Everything a worker receives must pickle: fail before any work, naming the object.
    ``codecs``: (codec, row name) pairs."""
    seen: set[int] = set()
    for codec, row in codecs:
        if id(codec) in seen:
            continue
        seen.add(id(codec))
        try:
            pickle.dumps(codec)
        except Exception as exc:
            raise CodecError(
                f"codec {codec.name!r} (row {row!r}) cannot be pickled for the worker processes: "
                f"{type(exc).__name__}: {exc}. Make it picklable (keep handles to libraries or models out of "
                f"its state, or rebuild them lazily), or run with --workers 1"
            ) from None
    for metric in image_metrics:
        try:
            pickle.dumps(metric)
        except Exception as exc:
            raise PluginError(
                f"metric {metric.name!r} cannot be pickled for the worker processes: {type(exc).__name__}: {exc}; "
                f"run with --workers 1"
            ) from None


def _init_worker(parent_pid: int) -> None:
    """Tie the worker's life to its parent's, then keep it to one thread.

    PR_SET_PDEATHSIG makes Linux SIGKILL the worker when the parent dies (even by SIGKILL),
    so no worker outlives ``taskcodec run``; the parent-pid check covers a parent that died
    before the call. Workers already use every core between them: a metric that runs torch
    (MS-SSIM) must not spawn threads of its own, or the cores are oversubscribed (~75x slower).
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl: the parent still kills its workers on SIGTERM and on errors
    if os.getppid() != parent_pid:
        os._exit(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def _import_modules(modules: tuple[str, ...]) -> None:
    """A worker's warm-up job: import what its chunks will need (a module that fails to import is
    left for the chunk that needs it to report)."""
    import importlib

    for name in ("taskcodec.codec_worker_job", *modules):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - reported, naming the codec, by the first chunk that unpickles it
            pass


@contextmanager
def sigterm_raises_systemexit(log: Callable[[str], None]):
    """While computing, SIGTERM unwinds like Ctrl-C (so the workers are shut down) and exits 143."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        log("taskcodec: terminated (SIGTERM); finished work is kept in the store, run the same command to resume")
        raise SystemExit(128 + signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
