"""Expands a benchmark config into cells (codec x rate point) and computes what the store
lacks; :mod:`taskcodec.results` then reads every row's numbers back from the store.

Work is resumable by construction: each chunk of encodings and each batch of task
outputs is committed to the store as soon as it is done, and a rerun computes only
what is missing. Codec work runs in worker processes (spawn: torch may already be
running threads in this process, and fork would deadlock); task inference runs here. With
the worker count left to the runner, workers are started only for coding that repays their
start-up (timed on the first chunks, :class:`taskcodec.worker_pool.CodingCostEstimate`);
cheaper work is coded in this process, with identical results.

Integrity: a stored stream is checked against its recorded sha256 before it is decoded
again (a damaged one is encoded again, with a log line naming it), and its decoded image
against the recorded ``decoded_digest`` (a difference is a nondeterministic decoder). The
first stream of every chunk a worker encodes is decoded again here, in another process, so
a codec whose round trip only works inside one process is caught. Workers die with this
process and SIGTERM shuts them down (:mod:`taskcodec.worker_pool`).
"""
from __future__ import annotations

import math
import os
import sys
import time
from concurrent.futures import Future
from typing import Any, Callable

import numpy as np

from .dataset import Dataset, samples_fingerprint
from .hashing import stable_json
from .metric import ImageMetric, TaskMetric
from .task import Task, TaskContext
from .config import BenchmarkConfig
from .dataset_builder import build_dataset
from .codec_worker_job import ChunkResult, describe_coding, encode_chunk
from .errors import CodecError, ConfigError, PluginError, StoreError
from .garbage_collection import older_objects_frozen
from .machine import resolve_device
from .pluginmanager import PluginManager
from .store import Store, encoding_keys, reference_key
from .stored_streams import check_decodes_here, decode_stored, stream_reusable
from .worker_pool import PRESTART_IMAGE_VALUES, CodingCostEstimate, check_picklable, make_pool, sigterm_raises_systemexit
from .results import REFERENCE, Cell, Collected, ResultCollector
from .run_images import RunImages

STORE_EVERY_SECONDS = 0.5  # the longest finished chunks wait for their commit while coding goes on


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class Runner:
    """Runs (or, with ``compute=False``, only collects) one benchmark."""

    def __init__(
        self,
        config: BenchmarkConfig,
        store: Store,
        plugins: PluginManager,
        *,
        workers: int | None = None,
        progress: bool = True,
        log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
        check_determinism: bool = False,
        expect: Callable[[str, dict[str, Any] | None], None] | None = None,
        executor: str | None = None,
        scheduler: str | None = None,
    ):
        self.config = config
        self.store = store
        self.plugins = plugins
        asked = workers or config.runner.workers  # None: up to every core, started only where they pay
        self.workers = asked or _default_workers()
        self.progress = progress
        self.log = log
        self.check_determinism = check_determinism  # encode and decode every image twice, compare
        # called with (dataset fingerprint, the main task's provenance) before any coding: raises to refuse
        # a run on other data or weights than expected (taskcodec submit against a published board)
        self.expect = expect
        self._pool = make_pool(self.workers, executor or config.runner.executor, scheduler or config.runner.scheduler,
                               on_demand=asked is None)
        self._decoded: dict[str, dict[str, np.ndarray]] = {}  # task id -> decoded images awaiting its inference
        self._unstored: list[ChunkResult] = []  # finished chunks awaiting their commit (_store_finished)
        self._unstored_outputs: list[tuple[str, str, str]] = []  # task outputs awaiting it, after those chunks
        self._stored_at = time.monotonic()

    # set-up -------------------------------------------------------------------------
    def _dataset(self, split: str) -> Dataset:
        return build_dataset(self.plugins.registry, self.config.dataset, split, cache_root=self.store.root / "datasets",
                             source=self.config.source)

    def task_context(self) -> TaskContext:
        """What the task gets in ``prepare`` (and ``train``): split loader, model folder, device, seed."""
        return TaskContext(
            load_split=self._dataset, cache_dir=self.store.models_dir, device=resolve_device(self.config.runner.device),
            seed=self.config.seed, progress=self.progress, log=self.log,
        )

    def _metrics(self) -> tuple[list[ImageMetric], list[TaskMetric]]:
        names = list(self.config.metrics)
        if not names:
            names = ["psnr"]
            if self.config.task is not None:
                names += list(self.plugins.get("task", self.config.task.name).target.default_metrics)
        image_metrics, task_metrics = [], []
        for i, name in enumerate(names):
            cls = self.plugins.get("metric", name).target
            if issubclass(cls, ImageMetric):
                image_metrics.append(cls())
            else:
                if self.config.task is None:
                    raise ConfigError(f"{self.config.source}: metrics[{i}]: {name!r} is a task metric but the config has no task")
                task_type = self.plugins.get("task", self.config.task.name).target.task_type
                if task_type not in cls.task_types:
                    raise ConfigError(
                        f"{self.config.source}: metrics[{i}]: {name!r} applies to {list(cls.task_types)} tasks, "
                        f"task {self.config.task.name!r} is a {task_type!r} task"
                    )
                task_metrics.append(cls())
        return image_metrics, task_metrics

    def _cells(self, digests: list[str]) -> list[Cell]:
        cells = []
        for c in self.config.codecs:
            codec = self.plugins.get("codec", c.name).target(**c.options)
            identity = codec.identity()
            for rate_point in c.rate_points or codec.default_rate_points:
                rate_point = codec.validate_rate_point(rate_point)
                cell = Cell(c.row, codec, identity, rate_point)
                cell.keys = encoding_keys(identity, rate_point, digests)
                cells.append(cell)
        return cells

    def _task_models(self, dataset: Dataset, cells: list[Cell], compute: bool,
                     run_info: dict[str, Any]) -> tuple[Task, str, dict[str, Any]]:
        """The main task model and its id, and the run info; sets each cell's model and id.

        Rows with ``task_options`` get a model built with ``{**task.options, **task_options}``: one
        model per distinct options (rows overriding nothing, or the same thing, share one). With
        ``compute`` each model is prepared and the run info records every id (collect-only mode,
        without prepare, finds each row's outputs through it); else the ids come from ``run_info``.
        """
        cfg = self.config
        cls = self.plugins.get("task", cfg.task.name).target
        main_key = stable_json(cfg.task.options)
        merged = {c.row: {**cfg.task.options, **c.task_options} for c in cfg.codecs if c.task_options}
        overrides = {row: stable_json(options) for row, options in merged.items()}  # row -> its model's key
        models = {main_key: cls(**cfg.task.options)}
        for row, options in merged.items():
            if overrides[row] not in models:
                models[overrides[row]] = cls(**options)
        task = models[main_key]
        if compute:
            context = self.task_context()
            ids: dict[str, str] = {}
            for key, model in models.items():
                model.prepare(dataset, context)
                ids[key] = f"{model.name}:{model.fingerprint()}"
            run_info = {"task_id": ids[main_key], "task": task.provenance(), "device": context.device,
                        "config_file": cfg.source}
            if overrides:
                run_info["row_task_ids"] = {row: ids[key] for row, key in overrides.items()}
                run_info["row_tasks"] = {row: models[key].provenance() for row, key in overrides.items()}
            self.store.put_run(cfg.key(), cfg.benchmark, run_info)
        elif "task_id" not in run_info or not set(overrides) <= set(run_info.get("row_task_ids", {})):
            raise StoreError(f"the store {self.store.root} has no run of benchmark {cfg.benchmark!r}: run `taskcodec run` first")
        task_id = run_info["task_id"]
        for cell in cells:
            if cell.row in overrides:
                cell.task, cell.task_id = models[overrides[cell.row]], run_info["row_task_ids"][cell.row]
            else:
                cell.task, cell.task_id = task, task_id
        return task, task_id, run_info

    # running ------------------------------------------------------------------------
    def run(self, compute: bool = True) -> Collected:
        cfg = self.config
        dataset = self._dataset(cfg.dataset.split)
        if compute and self._workers_likely_needed(dataset):
            self._pool.start(self._worker_modules())
        interrupted = True
        try:
            with older_objects_frozen():
                collected = self._run(dataset, compute)
            interrupted = False
        except (CodecError, StoreError, ConfigError, PluginError):
            interrupted = False  # an ordinary error: let running chunks finish (they are harmless)
            raise
        finally:
            self._pool.close(kill=interrupted)
        return collected

    def _run(self, dataset: Dataset, compute: bool) -> Collected:
        cfg = self.config
        images = RunImages(dataset, self.store.root / "tmp", write=compute and not self.store.was_computed(cfg.key()))
        try:
            return self._run_with(dataset, images, compute)
        finally:
            images.close()

    def _run_with(self, dataset: Dataset, images: RunImages, compute: bool) -> Collected:
        cfg = self.config
        samples, digests = images.load(self.workers)
        if not samples:
            raise ConfigError(f"{cfg.source}: dataset {cfg.dataset.name!r} split {cfg.dataset.split!r} is empty")
        image_metrics, task_metrics = self._metrics()
        cells = self._cells(digests)
        task, task_id, run_info = None, None, self.store.get_run(cfg.key()) or {}
        tasks: dict[str, Task] = {}  # task id -> model, for every model some row is evaluated with
        if cfg.task is not None:
            task, task_id, run_info = self._task_models(dataset, cells, compute, run_info)
            tasks = {task_id: task, **{cell.task_id: cell.task for cell in cells}}
        if self.expect is not None:
            self.expect(samples_fingerprint(samples, digests), run_info.get("task") if task is not None else None)
        if compute:
            with sigterm_raises_systemexit(self.log):
                self._compute(samples, digests, cells, image_metrics, tasks, images)
            self._pool.close(kill=False)  # before collecting: the workers' memory is not needed any more
            self.store.mark_computed(cfg.key())
        collector = ResultCollector(self.store, self.config, self.plugins)
        return collector.collect(dataset, samples, digests, cells, image_metrics, task, task_metrics, task_id, run_info)

    def _workers_likely_needed(self, dataset: Dataset) -> bool:
        """Whether to start the workers before planning (planning needs every image's digest, and the
        workers' start-up can overlap computing them): not for a benchmark this store finished before, and
        with an on-demand pool only for many image values (the first image's, times images and rate points)."""
        rate_points = sum(max(1, len(c.rate_points or ())) for c in self.config.codecs)
        work = len(dataset) * rate_points
        if not self._pool.wanted(work) or self.store.was_computed(self.config.key()):
            return False
        return not self._pool.on_demand or dataset[0].image.size * work >= PRESTART_IMAGE_VALUES

    def _worker_modules(self) -> list[str]:
        """The modules of the configured codecs and metrics, for the workers to import while they wait."""
        modules = []
        for kind, names in (("codec", [c.name for c in self.config.codecs]), ("metric", list(self.config.metrics))):
            for name in names:
                try:
                    modules.append(self.plugins.get(kind, name).target.__module__)
                except Exception:  # noqa: BLE001 - an unknown name is reported where it is used
                    pass
        return sorted(set(modules))

    def _compute(self, samples, digests, cells, image_metrics, tasks: dict[str, Task], images: RunImages) -> None:
        """Compute what the store lacks; ``tasks``: task id -> model, for every model some row uses."""
        ref_todo = self._plan_reference(digests, tasks)
        plan, wanted = self._plan_cells(samples, cells, [m.name for m in image_metrics])
        total = sum(len(todo) for todo in ref_todo.values()) + sum(len(p[1]) + len(p[2]) for p in plan)
        if total == 0:
            self.log("taskcodec: every result is already in the store; nothing to compute")
            return
        n_encode = sum(len(p[1]) for p in plan)
        if self.check_determinism:
            stored = sum(len(c.keys) for c in cells) - n_encode
            if stored > 0:
                self.log(f"taskcodec: --check-determinism checks only what this run encodes; {stored} encodings "
                         f"were already in the store (use a fresh --store to check every one)")
        if self._pool.wanted(n_encode):
            check_picklable([(p[0].codec, p[0].row) for p in plan if p[1]], image_metrics)
        bar = self._progress_bar(total)
        try:
            for tid, todo in ref_todo.items():
                bar.set_description(f"{REFERENCE} (task)", refresh=False)
                for block in _split(todo, self.config.runner.batch_size):  # a batch of images in memory at a time
                    self._predict_and_store(tasks[tid], tid, {reference_key(digests[i]): images.get(i) for i in block},
                                            bar)
            self._run_plan(plan, samples, digests, image_metrics, tasks, wanted, bar, images)
        finally:
            bar.close()
            self._decoded.clear()
            self._store_finished()  # also after an error or an interruption: keep what finished before it

    def _plan_reference(self, digests: list[str], tasks: dict[str, Task]) -> dict[str, list[int]]:
        """Task id -> the samples lacking its output on the original image (with the reference row)."""
        ref_todo: dict[str, list[int]] = {}
        if tasks and self.config.reference:
            # every model gets its own outputs on the originals (see Task.reference_outputs)
            for tid in tasks:
                have = self.store.task_output_keys(tid, [reference_key(d) for d in digests])
                todo = _unique([i for i, d in enumerate(digests) if reference_key(d) not in have], digests)
                if todo:
                    ref_todo[tid] = todo
        return ref_todo

    def _plan_cells(self, samples, cells: list[Cell], metric_names: list[str]):
        """``(plan, wanted)``: ``plan`` lists ``(cell, indices to encode, indices needing only a task output,
        the encoding records of the latter's stored streams)`` for the cells with work left; ``wanted`` maps an encoding key to the ids of the tasks awaiting its
        decoded image.

        Rows can share encodings (one codec and rate point evaluated with two task models): each is encoded
        once, and its decoded image goes to every model lacking an output for it.
        """
        plan = []
        planned: set[str] = set()  # encoding keys that some planned chunk encodes
        wanted: dict[str, set[str]] = {}  # encoding key -> ids of the tasks awaiting its decoded image
        predicting: set[tuple[str, str]] = set()  # (task id, key) decoded from its stored stream
        for cell in cells:
            encoded = self.store.encoded_keys(cell.keys)  # key sets: a warm rerun builds no records here
            measured = self.store.get_image_metrics(cell.keys, metric_names)
            complete = {k for k in encoded if all((k, m) in measured for m in metric_names)}
            to_encode = _unique([i for i, k in enumerate(cell.keys) if k not in complete and k not in planned], cell.keys)
            to_predict: list[int] = []
            records: dict = {}  # the encoding records of the streams to_predict decodes again
            if cell.task is not None:
                have = self.store.task_output_keys(cell.task_id, cell.keys)
                missing = _unique([i for i, k in enumerate(cell.keys)
                                   if k not in have and (cell.task_id, k) not in predicting], cell.keys)
                encode_keys = {cell.keys[i] for i in to_encode}  # by key: a duplicate image is encoded once
                to_predict = [i for i in missing if cell.keys[i] not in encode_keys and cell.keys[i] not in planned]
                # streams are written without fsync, and files can be damaged later: check each
                # against its recorded sha256 before reuse; a damaged one is encoded again
                records = self.store.get_encodings([cell.keys[i] for i in to_predict])
                damaged = [i for i in to_predict if not stream_reusable(self.store, cell.codec, records[cell.keys[i]],
                                                                        _where(cell, samples[i].id), self.log)]
                if damaged:
                    to_predict = [i for i in to_predict if i not in set(damaged)]
                    to_encode = sorted(set(to_encode) | set(damaged))
                for i in set(missing) - set(to_predict):
                    wanted.setdefault(cell.keys[i], set()).add(cell.task_id)
                predicting.update((cell.task_id, cell.keys[i]) for i in to_predict)
            planned.update(cell.keys[i] for i in to_encode)
            if to_encode or to_predict:
                plan.append((cell, to_encode, to_predict, records))
        return plan, wanted

    def _progress_bar(self, total: int):
        from tqdm import tqdm

        interactive = sys.stderr.isatty()
        return tqdm(total=total, desc="taskcodec", unit="img", disable=not self.progress, file=sys.stderr,
                    dynamic_ncols=True, mininterval=0.2 if interactive else 15.0)  # logs: a line every 15 s

    def _run_plan(self, plan, samples, digests, image_metrics, tasks: dict[str, Task], wanted: dict[str, set[str]],
                  bar, images: RunImages) -> None:
        """Encode the planned chunks (in the workers), decode the stored streams that lack only task outputs,
        and give every decoded image to the tasks awaiting it."""
        n_encode = sum(len(p[1]) for p in plan)
        pending: list[tuple[Cell, str, Future | ChunkResult]] = []  # (cell, first image id, job)
        on_demand = self._pool.on_demand and not self._pool.started
        pool = None if on_demand else self._pool.get(n_encode)
        # an on-demand pool starts once the coding left, timed here, would repay the workers' start-up
        costs = CodingCostEstimate() if on_demand and self._pool.wanted(n_encode) else None
        left = {n: len(p[1]) for n, p in enumerate(plan)}  # plan entry -> images it has left to encode
        # sized by the whole run's work, not each cell's: a sweep of many small cells (24 Kodak images x 5
        # qualities) then goes in a few chunks per worker, each a round trip, a transaction and a check
        chunk_size = self._chunk_size(n_encode)
        for n, (cell, to_encode, to_predict, records) in enumerate(plan):
            for chunk in _split(to_encode, chunk_size):
                if pool is None or self._pool.reads_local_files:
                    # this process and local workers view the images in the run's image file (no copy, and
                    # not in every chunk's pickle); others get them with the chunk
                    items = [(samples[i].id, digests[i], cell.keys[i], images.ref(i)) for i in chunk]
                    images.flush()
                else:
                    items = [(samples[i].id, digests[i], cell.keys[i], images.get(i)) for i in chunk]
                keep_decoded = any(cell.keys[i] in wanted for i in chunk)
                args = (cell.codec, cell.row, cell.rate_point, items, str(self.store.streams_dir),
                        image_metrics, keep_decoded, self.check_determinism)
                if pool is not None:
                    job = pool.submit(encode_chunk, *args)
                elif costs is not None and costs.wants_timing(n):
                    started = time.perf_counter()
                    job = encode_chunk(*args)
                    costs.timed(n, time.perf_counter() - started, len(chunk), last=left[n] == len(chunk))
                else:
                    job = encode_chunk(*args)
                left[n] -= len(chunk)
                if costs is not None and costs.pool_pays(left):
                    self._pool.start(self._worker_modules())
                    pool, costs = self._pool.get(n_encode), None
                pending.append((cell, items[0][0], job))
                if len(pending) > 4 * self.workers:  # bound the decoded images held in memory
                    pending = self._drain(pending, tasks, wanted, bar, block=True, limit=1)
                elif not isinstance(job, Future):  # coded here: on its way to the store now
                    pending = self._drain(pending, tasks, wanted, bar, block=False)
            if to_predict:  # encoded earlier, outputs missing: decode the stored streams, a batch at a time
                bar.set_description(f"{cell.row} {cell.rate_point} (task)", refresh=False)
                for block in _split(to_predict, self.config.runner.batch_size):
                    decoded = {cell.keys[i]: decode_stored(self.store, cell.codec, records[cell.keys[i]],
                                                           _where(cell, samples[i].id)) for i in block}
                    self._predict_and_store(cell.task, cell.task_id, decoded, bar)
            pending = self._drain(pending, tasks, wanted, bar, block=False)
        self._drain(pending, tasks, wanted, bar, block=True)
        for tid in list(self._decoded):
            self._flush_decoded(tasks, tid)

    def _drain(self, pending, tasks: dict[str, Task], wanted: dict[str, set[str]], bar, block: bool,
               limit: int | None = None):
        """Store finished chunks in submission order (at most ``limit``); keep the others."""
        done = 0
        while pending and (limit is None or done < limit):
            done += 1
            cell, first_image, job = pending[0]
            if isinstance(job, Future):
                if not block and not job.done():
                    break
                if not job.done():
                    self._store_finished()  # nothing finished waits unstored while this process waits
                try:
                    result = job.result()
                except self._pool.lost_worker_errors() as exc:
                    raise CodecError(
                        f"{_where(cell, first_image)}: a codec worker process died (killed, out of memory, or a "
                        f"crash in native code) while encoding the chunk that starts at this image or one running "
                        f"beside it: {exc}"
                    ) from None
                if result.records:  # the round trip must not depend on the encoding process
                    check_decodes_here(self.store, cell.codec, result.records[0], _where(cell, first_image))
            else:
                result = job
            pending.pop(0)
            bar.set_description(f"{cell.row} {cell.rate_point}", refresh=False)
            self._unstored.append(result)
            # Outputs are committed with (or after) the encodings they come from, and those lost with these
            # buffers are recomputed from the stored streams on resume; buffering gives each task full batches.
            for key, image in result.decoded.items():
                for tid in wanted.get(key, ()):
                    self._decoded.setdefault(tid, {})[key] = image
            for tid in [t for t, buffer in self._decoded.items() if len(buffer) >= self.config.runner.batch_size]:
                self._flush_decoded(tasks, tid)
            bar.update(len(result.records))
        self._store_if_due()
        return pending

    def _store_if_due(self) -> None:
        if time.monotonic() - self._stored_at >= STORE_EVERY_SECONDS:
            self._store_finished()

    def _store_finished(self) -> None:
        """Commit the finished chunks and task outputs together (see Store.put_results): at most
        STORE_EVERY_SECONDS apart, before a wait, and at the end or an error."""
        results, outputs, self._unstored, self._unstored_outputs = self._unstored, self._unstored_outputs, [], []
        self._stored_at = time.monotonic()
        if results or outputs:
            self.store.put_results([r for res in results for r in res.records],
                                   [m for res in results for m in res.metrics], outputs)

    def _flush_decoded(self, tasks: dict[str, Task], task_id: str) -> None:
        images = self._decoded.pop(task_id, None)
        if images:
            self._predict_and_store(tasks[task_id], task_id, images, None)

    def _predict_and_store(self, task: Task, task_id: str, images: dict[str, np.ndarray], bar) -> None:
        keys = list(images)
        size = self.config.runner.batch_size
        for start in range(0, len(keys), size):
            batch = keys[start : start + size]
            outputs = task.predict([images[k] for k in batch])
            if len(outputs) != len(batch):
                raise StoreError(f"task {task.name!r} returned {len(outputs)} outputs for {len(batch)} images")
            self._unstored_outputs += self.store.task_output_rows(task_id, dict(zip(batch, outputs)))
            self._store_if_due()
            if bar is not None:
                bar.update(len(batch))

    def _chunk_size(self, n: int) -> int:
        return max(4, min(64, math.ceil(n / (self.workers * 4))))

def _where(cell: Cell, sample_id: str) -> str:
    return describe_coding(cell.codec, cell.row, cell.rate_point, sample_id)


def _split(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _unique(indices: list[int], keys: list[str]) -> list[int]:
    """Drop indices whose key repeats an earlier one (identical images are computed once)."""
    seen: set[str] = set()
    out = []
    for i in indices:
        if keys[i] not in seen:
            seen.add(keys[i])
            out.append(i)
    return out
