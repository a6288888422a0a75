"""Store integrity: stream sha256s, the version 1 -> 2 migration, strict numbers, and runs killed
(SIGKILL, SIGTERM) at random points resuming to byte-identical leaderboards with no process left."""
from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid

import pandas as pd
import psutil
import pytest

from taskcodec.pluginmanager import PluginManager
from taskcodec.store import SCHEMA_VERSION, Store
from tests.helpers import textconfig
from tests.integrity_plugins import IntegrityPlugin, config, run


@pytest.fixture
def plugins():
    return PluginManager(extra_plugins=[("integrity", IntegrityPlugin)])


def test_each_encoding_records_the_sha256_of_its_stream(plugins, tmp_path):
    run(plugins, config(plugins, [{"name": "raw-test"}, {"name": "png"}]), tmp_path / "s")
    store = Store(tmp_path / "s")
    rows = store.db.execute("SELECT key, stream_sha256 FROM encodings").fetchall()
    assert len(rows) == 24
    records = store.get_encodings([key for key, _ in rows])
    for key, sha in rows:
        assert sha == hashlib.sha256(store.read_stream_if_present(records[key])).hexdigest()
    # a chunk's streams share one pack file
    assert len({r.pack for r in records.values()}) < len(records)
    assert sorted(p.name for p in store.streams_dir.iterdir()) == ["packs"]


def _as_schema_3(path) -> None:
    """What a store written by schema version 3 looks like: each stream in its own file, no pack columns."""
    store = Store(path)
    keys = [row[0] for row in store.db.execute("SELECT key FROM encodings")]
    for key, rec in store.get_encodings(keys).items():
        target = store.stream_path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(store.read_stream(rec))
    store.close()
    for pack in (path / "streams" / "packs").iterdir():
        pack.unlink()
    db = sqlite3.connect(path / "results.sqlite")
    db.execute("ALTER TABLE encodings DROP COLUMN pack")
    db.execute("ALTER TABLE encodings DROP COLUMN pack_offset")
    db.execute("UPDATE meta SET value='3' WHERE key='schema_version'")
    db.commit()
    db.close()


def test_version_3_store_keeps_reading_one_file_per_stream(plugins, tmp_path):
    cfg = config(plugins, [{"name": "raw-test"}, {"name": "jpeg", "rate_points": [30]}])
    first, _ = run(plugins, cfg, tmp_path / "s")
    _as_schema_3(tmp_path / "s")
    store = Store(tmp_path / "s")
    assert store.db.execute("SELECT COUNT(*) FROM encodings WHERE pack IS NULL").fetchone()[0] == 24  # all of them
    store.db.execute("DELETE FROM task_outputs WHERE key IN (SELECT key FROM encodings)")  # forces reuse
    store.db.commit()
    files = {p: p.stat().st_mtime_ns for p in store.streams_dir.rglob("*") if p.is_file()}
    store.close()
    second, logs = run(plugins, cfg, tmp_path / "s")
    assert pd.DataFrame(first.rows).equals(pd.DataFrame(second.rows))
    assert not [line for line in logs if "damaged" in line]
    assert {p: p.stat().st_mtime_ns for p in files} == files  # decoded from their own files, none written
    assert not list((tmp_path / "s" / "streams" / "packs").iterdir())


def _downgrade(path, version: int) -> None:
    """What a store written by schema version 1 or 2 looks like: the rate point column named
    ``setting``; in version 1, no stream_sha256 column."""
    db = sqlite3.connect(path / "results.sqlite")
    db.execute("ALTER TABLE encodings RENAME COLUMN rate_point TO setting")
    if version == 1:
        db.execute("ALTER TABLE encodings DROP COLUMN stream_sha256")
    db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(version),))
    db.commit()
    db.close()


def test_version_2_store_is_migrated_and_reused_as_it_is(plugins, tmp_path):
    cfg = config(plugins, [{"name": "raw-test"}, {"name": "jpeg", "rate_points": [30]}])
    first, _ = run(plugins, cfg, tmp_path / "s")
    Store(tmp_path / "s").close()
    _downgrade(tmp_path / "s", 2)
    store = Store(tmp_path / "s")
    columns = {r[1] for r in store.db.execute("PRAGMA table_info(encodings)")}
    assert "rate_point" in columns and "setting" not in columns
    assert store.db.execute("SELECT COUNT(*) FROM encodings WHERE stream_sha256 IS NULL").fetchone()[0] == 0
    streams = {p: p.stat().st_mtime_ns for p in store.streams_dir.rglob("*") if p.is_file()}
    store.close()
    second, _ = run(plugins, cfg, tmp_path / "s")
    assert pd.DataFrame(first.rows).equals(pd.DataFrame(second.rows))
    assert streams and {p: p.stat().st_mtime_ns for p in streams} == streams  # reused, none written again


def test_version_1_store_is_migrated_and_its_streams_verified_on_reuse(plugins, tmp_path):
    cfg = config(plugins, [{"name": "raw-test"}, {"name": "png"}])
    first, _ = run(plugins, cfg, tmp_path / "s")
    Store(tmp_path / "s").close()
    _downgrade(tmp_path / "s", 1)
    store = Store(tmp_path / "s")
    assert store.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    assert store.db.execute("SELECT COUNT(*) FROM encodings WHERE stream_sha256 IS NULL").fetchone()[0] == 24
    store.db.execute("DELETE FROM task_outputs WHERE key IN (SELECT key FROM encodings)")  # forces reuse
    second, logs = run(plugins, cfg, tmp_path / "s")
    assert pd.DataFrame(first.rows).equals(pd.DataFrame(second.rows))
    assert not [line for line in logs if "damaged" in line]
    # verified by decoding: their sha256 is now recorded
    assert store.db.execute("SELECT COUNT(*) FROM encodings WHERE stream_sha256 IS NULL").fetchone()[0] == 0


def test_numpy_numbers_from_plugins_are_stored_as_python_numbers(plugins, tmp_path):
    cfg = config(plugins, [{"name": "numpy-payload"}], metrics=("accuracy", "half-defined"))
    collected, _ = run(plugins, cfg, tmp_path / "s")
    store = Store(tmp_path / "s")
    outputs = [row[0] for row in store.db.execute("SELECT output FROM task_outputs")]
    assert outputs and all('"pred": ' in o and '"scores": [' in o for o in outputs)
    assert {type(r["payload_bytes"]) for r in collected.images} == {int}
    row = pd.DataFrame(collected.rows).set_index("codec").loc["numpy-payload"]
    assert row["half_defined"] == pytest.approx(1.5)
    assert row["half_defined_undefined"] == 6  # the odd first pixels: counted, not dropped silently


def test_metric_defined_for_every_image_adds_no_undefined_column(plugins, tmp_path):
    collected, _ = run(plugins, config(plugins, [{"name": "raw-test"}], metrics=("accuracy", "psnr")), tmp_path / "s")
    assert not [c for c in pd.DataFrame(collected.rows).columns if c.endswith("_undefined")]


def test_ms_ssim_on_tiny_images_stays_undefined_and_counted(plugins, tmp_path):
    collected, _ = run(plugins, config(plugins, [{"name": "raw-test"}], task=None, metrics=("psnr", "ms-ssim")),
                       tmp_path / "s")
    row = pd.DataFrame(collected.rows).set_index("codec").loc["raw-test"]
    assert pd.isna(row["ms_ssim"]) and row["ms_ssim_undefined"] == 12


def test_check_determinism_passes_for_deterministic_codecs(plugins, tmp_path):
    cfg = config(plugins, [{"name": "raw-test"}, {"name": "png"}, {"name": "jpeg", "rate_points": [20, 80]}])
    checked, _ = run(plugins, cfg, tmp_path / "a", check_determinism=True)
    plain, _ = run(plugins, cfg, tmp_path / "b")
    assert pd.DataFrame(checked.rows).equals(pd.DataFrame(plain.rows))


def test_well_behaved_codecs_pass_the_cross_process_check(plugins, tmp_path):
    cfg = config(plugins, [{"name": "raw-test"}, {"name": "jpeg", "rate_points": [30]}], task=None,
                 metrics=("psnr",), count=80, workers=2)
    collected, _ = run(plugins, cfg, tmp_path / "s")
    assert len(collected.images) == 160


# ----------------------------------------------------------------- killed runs
FACES = textconfig(
    """
    benchmark: faults
    dataset: {name: synthetic-faces, split: test, options: {size: [64, 64], count: 200}}
    metrics: [psnr]
    codecs:
      - {name: jpeg, rate_points: [10, 30, 50, 70, 90]}
      - {name: webp, rate_points: [10, 40, 70, 95]}
    runner: {workers: 2}
    """
)
TOTAL = 200 * 9


def _start(cfg, store, out, marker):
    """Start ``taskcodec run``; its output goes to a file (a pipe the test never drains could fill and block
    a process of the run, its resource tracker included), read back by ``_output``."""
    cmd = [sys.executable, "-m", "taskcodec.cli", "run", str(cfg), "--store", str(store), "--out", str(out), "--no-progress"]
    env = dict(os.environ, TASKCODEC_FAULT_MARKER=marker, OMP_NUM_THREADS="1")
    log = cfg.parent / f"run-{uuid.uuid4().hex[:8]}.log"
    with open(log, "wb") as sink:  # the child keeps its own descriptor
        process = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT)
    process.log = log
    return process


def _output(process) -> str:
    return process.log.read_text(errors="replace")


def _encodings(store) -> int:
    try:
        db = sqlite3.connect(f"file:{store}/results.sqlite?mode=ro", uri=True, timeout=1)
        try:
            return db.execute("SELECT COUNT(*) FROM encodings").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def _marked_processes(marker: str) -> list[psutil.Process]:
    """Live processes started by this test's run (they inherit its environment marker)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("TASKCODEC_FAULT_MARKER") == marker and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


def _assert_nothing_left(victim: subprocess.Popen, children: list[psutil.Process], marker: str) -> None:
    """Every child (workers, resource tracker) ends with the killed run; generous deadline, not a timing."""
    _, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, f"left running after {victim.args[3]} was killed: {[p.cmdline() for p in alive]}"
    _assert_none_marked(marker)


def _assert_none_marked(marker: str) -> None:
    """No process of the run is left (the resource tracker exits a moment after its last client)."""
    deadline = time.time() + 20
    while _marked_processes(marker) and time.time() < deadline:
        time.sleep(0.1)
    left = [_describe(p) for p in _marked_processes(marker)]
    assert not left, f"left running: {left}"


def _describe(process: psutil.Process) -> dict:
    """A left process as a failure message needs it: the system call it waits in (0 read, 1 write, 7 poll on
    x86-64) and, for each pipe it holds, the live processes holding the same pipe with their end (``r``/``w``):
    a resource tracker exits when the last writer of its pipe has gone."""
    def pipes(pid) -> dict[str, str]:
        found = {}
        try:
            names = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            return found
        for fd in names:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("pipe:"):
                    flags = int(open(f"/proc/{pid}/fdinfo/{fd}").read().split("flags:")[1].split()[0], 8)
                    found[target] = "w" if flags & os.O_WRONLY else "r"
            except (OSError, IndexError, ValueError):
                continue  # closed meanwhile (listdir's own descriptor among them)
        return found

    def syscall(pid) -> str:
        try:
            return open(f"/proc/{pid}/syscall").read().split()[0]
        except (OSError, IndexError):
            return "?"

    holders = {}
    for pipe, end in pipes(process.pid).items():
        holders[f"{pipe} {end}"] = [(p.pid, p.info["name"], end_, syscall(p.pid))
                                    for p in psutil.process_iter(["name"]) if p.pid != process.pid
                                    for pipe_, end_ in pipes(p.pid).items() if pipe_ == pipe]
    with process.oneshot():
        return {"pid": process.pid, "ppid": process.ppid(), "status": process.status(),
                "syscall": syscall(process.pid), "cmdline": process.cmdline(), "pipe_holders": holders}


def _kill_at(victim, store, target: int, sig, marker) -> bool:
    """Kill ``victim`` (its pid only) once the store holds ``target`` encodings; False if it finished first."""
    while victim.poll() is None and _encodings(store) < target:
        time.sleep(0.01)
    if victim.poll() is not None:
        return False
    children = psutil.Process(victim.pid).children(recursive=True)
    victim.send_signal(sig)
    victim.wait(timeout=60)
    _assert_nothing_left(victim, children, marker)
    return True


@pytest.mark.slow
def test_runs_killed_at_random_points_resume_to_identical_results(tmp_path):
    cfg = tmp_path / "faults.yaml"
    cfg.write_text(FACES)
    reference = _start(cfg, tmp_path / "ref-store", tmp_path / "ref", "ref")
    assert reference.wait(timeout=120) == 0, _output(reference)

    marker = uuid.uuid4().hex
    rng = random.Random(int(os.environ.get("TASKCODEC_FAULT_SEED", "7")))
    targets = sorted(rng.sample(range(1, int(0.9 * TOTAL)), 12))
    kills = 0
    for i, target in enumerate(targets):
        victim = _start(cfg, tmp_path / "store", tmp_path / "out", marker)
        if i % 3 == 0:  # some kills land during start-up and worker spawning, the others mid-encoding
            time.sleep(rng.uniform(0.0, 1.0))
            target = 0
        sig = signal.SIGTERM if i == len(targets) - 1 else signal.SIGKILL
        kills += _kill_at(victim, tmp_path / "store", target, sig, marker)
        if sig == signal.SIGTERM and victim.returncode is not None:
            assert victim.returncode in (143, -signal.SIGTERM), _output(victim)
    assert kills >= 10, f"only {kills} of the runs were killed before they finished"
    assert 0 < _encodings(tmp_path / "store") < TOTAL
    resumed = _start(cfg, tmp_path / "store", tmp_path / "out", marker)
    assert resumed.wait(timeout=120) == 0, _output(resumed)
    for name in ("results.csv", "images.csv.gz"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name
    _assert_none_marked(marker)


def test_outputs_read_back_equal_and_never_share_a_mutable_value(tmp_path):
    store = Store(tmp_path / "s")
    outputs = {"a": 3, "b": 3, "c": [1, 2], "d": [1, 2], "e": {"p": 0.5}, "f": {"p": 0.5}, "g": None, "h": 3.0}
    store.put_results([], [], store.task_output_rows("t", outputs))
    back = store.get_task_outputs("t", list(outputs))
    assert back == outputs and type(back["h"]) is float and type(back["a"]) is int
    assert back["c"] is not back["d"] and back["e"] is not back["f"]  # a task may change its own copy
    back["c"].append(9)
    assert store.get_task_outputs("t", ["d"])["d"] == [1, 2]
