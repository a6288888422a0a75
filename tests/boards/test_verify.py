"""`taskcodec verify`: a published board's numbers recompute from its own files, and an edited
number or a swapped per-sample file is caught and named."""
from __future__ import annotations

import gzip
import shutil

import pandas as pd
from click.testing import CliRunner

from taskcodec.cli import main
from taskcodec.pluginmanager import get_plugin_manager
from taskcodec.publish import publish
from taskcodec.verify import verify_board

from tests.helpers import make_collected


def board(tmp_path, name="board", **kw):
    collected, config = make_collected(**kw)
    publish(collected, config, tmp_path / name)
    return tmp_path / name


def problems(folder) -> dict[str, list[str]]:
    return {v.subject: v.problems for v in verify_board(folder, get_plugin_manager().registry) if v.problems}


def test_a_published_board_verifies(tmp_path):
    folder = board(tmp_path)
    verdicts = verify_board(folder, get_plugin_manager().registry)
    assert all(v.ok for v in verdicts), [v.problems for v in verdicts]
    rows = [v for v in verdicts if v.subject.startswith("row ")]
    assert len(rows) == 7 and all(v.checked >= (1 if "none" in v.subject else 3) for v in rows)  # images, bpp, accuracy
    result = CliRunner().invoke(main, ["verify", str(folder)])
    assert result.exit_code == 0 and "ok: " in result.output


def test_an_edited_accuracy_is_named_with_its_row(tmp_path):
    folder = board(tmp_path)
    for name in ("results.csv",):
        frame = pd.read_csv(folder / name)
        frame.loc[(frame.codec == "webp") & (frame.rate_point == 40), "accuracy"] = 0.99
        frame.to_csv(folder / name, index=False)
    found = problems(folder)
    assert any("results.csv" in p for p in found["files (manifest.json)"])
    assert any("webp 40" in p and "accuracy" in p for p in found["results.csv = results.json rows"])
    result = CliRunner().invoke(main, ["verify", str(folder)])
    assert result.exit_code == 1 and "MISMATCH" in result.output and "webp 40" in result.output


def test_an_edit_made_consistent_everywhere_but_the_samples_is_still_caught(tmp_path):
    """Even with results.csv, results.json and the manifest rewritten to agree, the row's accuracy no
    longer recomputes from the samples."""
    import json

    from taskcodec.publish import certify_manifest

    folder = board(tmp_path)
    frame = pd.read_csv(folder / "results.csv")
    frame.loc[(frame.codec == "jpeg") & (frame.rate_point == 10), "accuracy"] = 0.95
    frame.to_csv(folder / "results.csv", index=False, float_format="%.6g")
    document = json.loads((folder / "results.json").read_text())
    for row in document["rows"]:
        if row["codec"] == "jpeg" and row["rate_point"] == 10:
            row["accuracy"] = 0.95
    (folder / "results.json").write_text(json.dumps(document))
    (folder / "manifest.json").unlink()
    certify_manifest(folder)
    found = problems(folder)
    assert list(found) == ["row jpeg 10", "BD-rates"] or list(found)[0] == "row jpeg 10"
    assert "accuracy: published 0.95, recomputed 0.6" in found["row jpeg 10"][0]


def test_a_swapped_samples_file_is_caught(tmp_path):
    folder = board(tmp_path)
    other = board(tmp_path, "other", row_names=("jpeg", "webp"), shift=7)  # same numbers, other samples
    shutil.copy(other / "samples.csv.gz", folder / "samples.csv.gz")
    assert "samples.csv.gz" in " ".join(problems(folder)["files (manifest.json)"])
    third = board(tmp_path, "third", row_names=("jpeg", "avif"))  # another row's samples
    shutil.copy(third / "samples.csv.gz", folder / "samples.csv.gz")
    found = problems(folder)
    assert any("no per-sample rows" in p for p in found["row webp 10"])


def test_a_truncated_per_image_file_is_caught(tmp_path):
    folder = board(tmp_path)
    frame = pd.read_csv(folder / "images.csv.gz")
    with gzip.open(folder / "images.csv.gz", "wt") as fh:
        frame.iloc[:-5].to_csv(fh, index=False)
    found = problems(folder)
    assert any("images: published 30, recomputed 25" in p for p in found["row webp 80"])


def test_an_edited_rate_matched_accuracy_is_caught(tmp_path):
    import json

    from taskcodec.publish import certify_manifest

    folder = board(tmp_path)
    document = json.loads((folder / "results.json").read_text())
    matched = document["bd"]["rate_matched"]
    codec = next(c for c, values in matched["quality"].items() if any(v is not None for v in values))
    k = next(i for i, v in enumerate(matched["quality"][codec]) if v is not None)
    matched["quality"][codec][k] += 0.05
    (folder / "results.json").write_text(json.dumps(document))
    certify_manifest(folder)
    assert any(f"{codec} quality at {matched['bpp'][k]:g} bpp" in p for p in problems(folder)["BD-rates"])
