"""Publishing a leaderboard folder: escaping of supplied text, the manifest that `up_to_date` checks,
an unwritable folder, and kills at random points of a render."""
from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import random
import re
import signal
import time
from pathlib import Path

import pytest

from taskcodec import TaskMetric
from taskcodec.errors import PublishError
from taskcodec.files import sha256_file
from taskcodec.publish import MANIFEST, publish, read_manifest, up_to_date
from taskcodec.results import Collected

from tests.helpers import board_digests, make_collected

# ------------------------------------------------------------------------------ escaping
def test_row_names_title_and_notes_render_as_text_not_markup(tmp_path):
    labels = ("jpeg", "a|b", "<script>alert(1)</script>", "tick`s $x$ *bold* [link](http://x)")
    collected, config = make_collected(labels, title="Title <b>bold</b> | $5", notes=["<img src=x onerror=alert(1)>"])
    publish(collected, config, tmp_path / "board")
    readme = (tmp_path / "board" / "README.md").read_text()
    # the provenance's config is a fenced code block (shown verbatim, never rendered): look outside it
    outside_code = re.sub(r"(?ms)^(`{3,})json$.*?^\1$", "", readme)
    assert "json" in readme.split("## Provenance")[1] and len(outside_code) < len(readme)
    assert "<script>" not in outside_code and "<img" not in outside_code and "<b>" not in outside_code
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in readme
    assert "&lt;img src=x onerror=alert(1)&gt;" in readme
    # every row of the leaderboard table has the header's number of cells: a '|' in a name stays in its cell
    table = [line for line in readme.split("## Leaderboard")[1].split("##")[0].splitlines() if line.startswith("|")]
    cells = {len(line.replace("\\|", "").strip("|").split("|")) for line in table}
    assert len(cells) == 1 and len(table) == 2 + 1 + 3 * len(labels)
    assert "a\\|b" in readme
    assert (tmp_path / "board" / "rd.png").stat().st_size > 1000  # '$x$' did not break the plot


# ------------------------------------------------------------------------------ manifest
def test_manifest_lists_every_file_and_a_damaged_board_is_rendered_again(tmp_path):
    collected, config = make_collected()
    folder = tmp_path / "board"
    (folder / "models").mkdir(parents=True)
    (folder / "models" / "weights.pt").write_bytes(b"not rendered here")
    assert publish(collected, config, folder)
    manifest = read_manifest(folder)
    expected = {"README.md", "rd.png", "confusion.png", "results.csv", "results.json", "images.csv.gz",
                "samples.csv.gz", "config.yaml"}
    assert set(manifest["files"]) == expected
    assert all(sha256_file(folder / n) == h for n, h in manifest["files"].items())
    reference = board_digests(folder)
    assert not publish(collected, config, folder)  # up to date
    damages = [
        lambda: (folder / "samples.csv.gz").unlink(),
        lambda: (folder / "confusion.png").unlink(),
        lambda: (folder / "README.md").write_text((folder / "README.md").read_text()[:100]),
        lambda: (folder / "rd.png").write_bytes(b""),
        lambda: (folder / MANIFEST).write_text("{not json"),
        lambda: (folder / MANIFEST).unlink(),
    ]
    for damage in damages:
        damage()
        assert publish(collected, config, folder), "a damaged board must be rendered again"
        assert board_digests(folder) == reference
    assert (folder / "models" / "weights.pt").read_bytes() == b"not rendered here"
    assert not list(tmp_path.glob(".board.staging-*"))


def test_a_file_no_longer_rendered_is_removed(tmp_path):
    collected, config = make_collected()
    folder = tmp_path / "board"
    publish(collected, config, folder)
    assert (folder / "samples.csv.gz").is_file()
    without_samples = Collected(collected.rows, collected.images, [], collected.provenance)
    publish(without_samples, config, folder)
    assert not (folder / "samples.csv.gz").exists() and not (folder / "confusion.png").exists()
    assert "samples.csv.gz" not in read_manifest(folder)["files"]


def test_unwritable_folder_is_an_error_before_anything_is_written(tmp_path):
    collected, config = make_collected()
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(PublishError, match="a-file"):
        publish(collected, config, blocker / "board")
    assert blocker.read_text() == "x"


def test_cli_run_with_an_unwritable_out_touches_nothing(tmp_path):
    from click.testing import CliRunner

    from taskcodec.cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("benchmark: c\ndataset: {name: synthetic-faces, options: {count: 8}}\ncodecs: [png]\n")
    result = CliRunner().invoke(main, ["run", str(cfg), "--out", str(blocker / "b"), "--store", str(tmp_path / "s")])
    assert result.exit_code == 2 and "cannot write the leaderboard folder" in result.output
    assert not (tmp_path / "s").exists()  # refused before the store was even opened


def test_publish_refuses_a_dirty_tree_and_run_writes_runs_by_default(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import taskcodec.provenance
    from taskcodec.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text("benchmark: c\ndataset: {name: synthetic-faces, options: {count: 8}}\ncodecs: [png]\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(taskcodec.provenance, "git_revision", lambda folder=None, outside=None: {"revision": "ab" * 20, "dirty": True})
    refused = CliRunner().invoke(main, ["run", str(cfg), "--publish", "--store", "s", "--no-progress"])
    assert refused.exit_code == 2 and "uncommitted changes" in refused.output
    assert not (tmp_path / "leaderboard").exists() and not (tmp_path / "s").exists()
    ran = CliRunner().invoke(main, ["run", str(cfg), "--store", "s", "--no-progress"])
    assert ran.exit_code == 0, ran.output
    assert (tmp_path / "runs" / "c" / "results.csv").is_file() and not (tmp_path / "leaderboard").exists()
    monkeypatch.setattr(taskcodec.provenance, "git_revision", lambda folder=None, outside=None: {"revision": "ab" * 20, "dirty": False})
    published = CliRunner().invoke(main, ["run", str(cfg), "--publish", "--store", "s", "--no-progress"])
    assert published.exit_code == 0, published.output
    document = json.loads((tmp_path / "leaderboard" / "c" / "results.json").read_text())
    assert document["provenance"]["command"].endswith("--publish")
    assert document["provenance"]["codec_devices"] == {"png": "cpu"}
    assert document["provenance"]["machine"]["processor"] and document["provenance"]["machine"]["cpus"] >= 1


# ------------------------------------------------------------------------------ task metrics' board methods
class _ScoredMetric(TaskMetric):
    """A metric of another task kind: its own per-sample score and figure, through the optional methods."""

    name = "demo-score"
    task_kinds = ("demo",)

    def compute(self, rows):
        return {}

    def sample_scores(self, samples):
        return "demo_score", (samples["label"] == samples["pred"]).astype(float)

    def draw_figures(self, folder, results, samples, provenance):
        (folder / "demo.png").write_bytes(b"a figure of %d rows" % len(results))
        return ["`demo.png`: a demo figure."]


def test_task_metrics_add_scores_and_figures_each_implementation_once(tmp_path):
    import pandas as pd

    from taskcodec.publish import board_hooks, bootstrap_samples, certify_manifest
    from taskcodec_plugins.metrics.classification import Accuracy, BalancedAccuracy, MacroF1

    classification = [Accuracy(), BalancedAccuracy(), MacroF1()]
    assert board_hooks(classification, "draw_figures") == classification[:1]  # one shared implementation
    collected, config = make_collected()
    samples, images = pd.DataFrame(collected.samples), pd.DataFrame(collected.images)
    assert bootstrap_samples(samples, images, classification)[1] == "correct"
    assert bootstrap_samples(samples, images, [_ScoredMetric(), *classification])[1] == "demo_score"  # the first
    assert bootstrap_samples(samples, images, [])[0] is None
    collected.task_metrics = [_ScoredMetric(), *classification]
    folder = tmp_path / "board"
    publish(collected, config, folder)
    readme = (folder / "README.md").read_text()
    assert "- `demo.png`: a demo figure." in readme and "`confusion.png`: confusion matrices" in readme
    assert {"demo.png", "confusion.png"} <= set(read_manifest(folder)["files"])
    assert "95% CI" in readme
    collected.task_metrics = []  # no metric with board methods: no figures, no intervals
    publish(collected, config, folder, force=True)
    readme = (folder / "README.md").read_text()
    assert not (folder / "confusion.png").exists() and not (folder / "demo.png").exists() and "95% CI" not in readme
    (folder / "demo.png").write_bytes(b"drawn before manifests existed")
    (folder / MANIFEST).unlink()
    assert "demo.png" in certify_manifest(folder)["files"]  # a board's figures are its .png files


# ------------------------------------------------------------------------------ kills while rendering
def _publish_in_child(job: str, started: str) -> None:
    collected, config, folder = pickle.loads(Path(job).read_bytes())
    Path(started).touch()
    publish(collected, config, Path(folder), force=True)


@pytest.mark.slow
def test_kills_at_random_points_of_a_render_leave_a_board_the_next_run_completes(tmp_path):
    """12 SIGKILLs, each at a random moment of a render (after the child says it started): the next
    publish always restores the complete, byte-identical board."""
    collected, config = make_collected()
    reference_folder = tmp_path / "reference"
    started = time.perf_counter()
    publish(collected, config, reference_folder)
    render_seconds = time.perf_counter() - started
    reference = board_digests(reference_folder)
    folder = tmp_path / "board"
    publish(collected, config, folder)
    job = tmp_path / "job.pickle"
    job.write_bytes(pickle.dumps((collected, config, str(folder))))
    context = multiprocessing.get_context("spawn")
    rng = random.Random(0)
    interrupted = 0
    for trial in range(12):
        marker = tmp_path / f"started-{trial}"
        child = context.Process(target=_publish_in_child, args=(str(job), str(marker)))
        child.start()
        while not marker.exists() and child.is_alive():
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 1.2 * render_seconds))
        if child.is_alive():
            os.kill(child.pid, signal.SIGKILL)
            interrupted += 1
        child.join()
        publish(collected, config, folder)  # the next run: re-renders whatever the kill left damaged
        assert board_digests(folder) == reference, f"trial {trial}"
        assert up_to_date(folder, read_manifest(folder)["content_digest"]) is not None
    assert interrupted >= 6  # most kills landed inside a render


def test_notes_file_is_rendered_kept_beside_config_and_an_edit_renders_again(tmp_path):
    from taskcodec.config import parse_config

    collected, config = make_collected()
    (tmp_path / "configs").mkdir()
    notes = tmp_path / "configs" / "notes.md"
    notes.write_text("- From the notes file,\n  on two lines.\n")
    raw = {**config.raw, "leaderboard": {**config.raw["leaderboard"], "notes_file": "notes.md"}}
    source = str(tmp_path / "configs" / "board.yaml")
    assert publish(collected, parse_config(raw, source), tmp_path / "board")
    readme = (tmp_path / "board" / "README.md").read_text()
    assert "- From the notes file, on two lines." in readme
    assert (tmp_path / "board" / "notes.md").read_bytes() == notes.read_bytes()
    assert "notes.md" in json.loads((tmp_path / "board" / "manifest.json").read_text())["files"]
    assert not publish(collected, parse_config(raw, source), tmp_path / "board")  # up to date
    notes.write_text("- Edited.\n")
    assert publish(collected, parse_config(raw, source), tmp_path / "board")  # the notes are content
    assert "- Edited." in (tmp_path / "board" / "README.md").read_text()
