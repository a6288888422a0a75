"""`taskcodec submit` and `taskcodec merge`: a contributor runs only their rows against a published board's
data, weights and protocol; the board's maintainer merges the bundle without recomputing anything. Refused,
with the reason, for other data or weights, a tampered bundle and a colliding row; merging is repeatable and
order-independent."""
from __future__ import annotations

import gzip
import json
import shutil

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from taskcodec.cli import main
from taskcodec.pluginmanager import get_plugin_manager
from taskcodec.publish import certify_manifest
from taskcodec.verify import verify_board

from tests.helpers import board_digests, fake_lfw, random_checkpoint

BOARD_ROWS = [{"name": "jpeg", "rate_points": [5, 90]}, {"name": "webp", "rate_points": [10, 80]}]
NEW_ROWS = {"webp-fast": {"name": "webp", "row": "webp-fast", "options": {"method": 0}, "rate_points": [20, 60]},
            "jpeg-444": {"name": "jpeg", "row": "jpeg-444", "options": {"subsampling": "444"}, "rate_points": [30, 70]}}


def write_config(path, root, weights, codecs, **change):
    raw = {"benchmark": "mini", "seed": 0,
           "dataset": {"name": "lfw", "root": str(root), "options": {"align": "none"}},
           "task": {"name": "mobilefacenet", "options": {"weights": str(weights), "precision": "fp32"}},
           "metrics": ["verification", "psnr"], "codecs": codecs, "runner": {"workers": 1},
           "leaderboard": {"anchor": codecs[0].get("row", codecs[0]["name"]), "quality_metric": "accuracy"}}
    raw.update(change)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A published board (jpeg, webp) and the contributor's config with two more rows."""
    tmp = tmp_path_factory.mktemp("submit")
    root, weights = fake_lfw(tmp / "data"), random_checkpoint(tmp / "w.ckpt")
    board_config = write_config(tmp / "board.yaml", root, weights, BOARD_ROWS)
    ran = invoke("run", board_config, "--out", tmp / "board", "--store", tmp / "store", "--no-progress")
    assert ran.exit_code == 0, ran.output
    mine = write_config(tmp / "mine.yaml", root, weights, BOARD_ROWS + list(NEW_ROWS.values()))
    bundles = {}
    for row in NEW_ROWS:
        made = invoke("submit", mine, "--rows", row, "--board", tmp / "board", "--out", tmp / f"bundle-{row}",
                      "--store", tmp / "contributor-store", "--no-progress", "--workers", "1")
        assert made.exit_code == 0, made.output
        bundles[row] = tmp / f"bundle-{row}"
    return {"tmp": tmp, "root": root, "weights": weights, "mine": mine, "bundles": bundles}


def board_copy(world, tmp_path):
    shutil.copytree(world["tmp"] / "board", tmp_path / "board")
    return tmp_path / "board"


def rows_of(folder):
    return pd.read_csv(folder / "results.csv")


def test_a_bundle_holds_only_its_rows_and_names_its_board(world):
    bundle = world["bundles"]["webp-fast"]
    claims = json.loads((bundle / "bundle.json").read_text())
    board = json.loads((world["tmp"] / "board" / "results.json").read_text())
    assert claims["rows"] == ["webp-fast"] and claims["board"]["content_digest"] == board["content_digest"]
    assert claims["board"]["dataset_fingerprint"] == board["provenance"]["dataset"]["fingerprint"]
    assert set(rows_of(bundle).codec) == {"none", "webp-fast"}
    assert all(v.ok for v in verify_board(bundle, get_plugin_manager().registry))


def test_merge_adds_the_rows_without_changing_the_board_s_own(world, tmp_path):
    board = board_copy(world, tmp_path)
    before = rows_of(board)
    merged = invoke("merge", board, world["bundles"]["webp-fast"])
    assert merged.exit_code == 0 and "merged rows webp-fast" in merged.output, merged.output
    after = rows_of(board)
    assert list(after.codec.unique()) == ["none", "jpeg", "webp", "webp-fast"]
    pd.testing.assert_frame_equal(after[after.codec != "webp-fast"].reset_index(drop=True), before)
    new = rows_of(world["bundles"]["webp-fast"])
    pd.testing.assert_frame_equal(after[after.codec == "webp-fast"].reset_index(drop=True),
                                  new[new.codec == "webp-fast"].reset_index(drop=True))
    document = json.loads((board / "results.json").read_text())
    assert {(b["codec"], b["anchor"]) for b in document["bd"]["bd"]} >= {("webp-fast", "jpeg")}
    assert document["provenance"]["merged"]["webp-fast"]["command"].startswith("taskcodec submit")
    assert "webp-fast" in (board / "README.md").read_text()
    assert all(v.ok for v in verify_board(board, get_plugin_manager().registry))


def test_merging_again_changes_nothing_and_the_order_does_not_matter(world, tmp_path):
    one, other = board_copy(world, tmp_path / "a"), board_copy(world, tmp_path / "b")
    a, b = world["bundles"]["webp-fast"], world["bundles"]["jpeg-444"]
    assert invoke("merge", one, a).exit_code == 0 and invoke("merge", one, b).exit_code == 0
    assert invoke("merge", other, b, a).exit_code == 0
    assert board_digests(one) == board_digests(other)
    again = invoke("merge", one, a, b)
    assert again.exit_code == 0 and "already holds every row" in again.output
    assert board_digests(one) == board_digests(other)


def _tamper_accuracy(bundle):
    """An edited accuracy, made consistent in results.csv, results.json and the manifest."""
    frame = rows_of(bundle)
    frame.loc[frame.codec == "webp-fast", "accuracy"] = 0.99
    frame.to_csv(bundle / "results.csv", index=False)
    document = json.loads((bundle / "results.json").read_text())
    for row in document["rows"]:
        if row["codec"] == "webp-fast":
            row["accuracy"] = 0.99
    (bundle / "results.json").write_text(json.dumps(document, indent=1))
    certify_manifest(bundle)


def _swap_samples(bundle):
    """Per-sample rows that do not give the published numbers: scores of one rate point moved to another."""
    with gzip.open(bundle / "samples.csv.gz") as fh:
        samples = pd.read_csv(fh)
    mine = samples.codec == "webp-fast"
    samples.loc[mine, "score"] = samples.loc[mine, "score"].to_numpy()[::-1]
    (bundle / "samples.csv.gz").write_bytes(gzip.compress(samples.to_csv(index=False).encode(), mtime=0))
    certify_manifest(bundle)


def _other_board(bundle):
    claims = json.loads((bundle / "bundle.json").read_text())
    claims["results_content_digest"] = "0" * 64
    (bundle / "bundle.json").write_text(json.dumps(claims))


def _model_without_card(bundle):
    """A row that brings its own trained model, without the model card saying what it was trained on."""
    document = json.loads((bundle / "results.json").read_text())
    entry = next(c for c in document["provenance"]["config"]["codecs"] if c.get("row") == "webp-fast")
    entry.setdefault("options", {})["models"] = "models/webp-fast"
    document["provenance"]["model_cards"] = [c for c in document["provenance"].get("model_cards", [])
                                             if c["row"] != "webp-fast"]
    (bundle / "results.json").write_text(json.dumps(document, indent=1))
    certify_manifest(bundle)


@pytest.mark.parametrize("tamper, reason", [
    (_model_without_card, "row 'webp-fast' brings its own codec but the bundle has no model card"),
    (_tamper_accuracy, "accuracy"),
    (_swap_samples, "webp-fast"),
    (_other_board, "names results content digest"),
    (lambda bundle: (bundle / "bundle.json").unlink(), "not a bundle"),
    (lambda bundle: (bundle / "bundle.json").write_text('{"format": 1, "rows": []}'), "does not match the bundle schema"),
])
def test_a_tampered_bundle_is_refused_with_the_reason(world, tmp_path, tamper, reason):
    board = board_copy(world, tmp_path)
    before = board_digests(board)
    bundle = tmp_path / "bundle"
    shutil.copytree(world["bundles"]["webp-fast"], bundle)
    tamper(bundle)
    refused = invoke("merge", board, bundle)
    assert refused.exit_code == 2 and reason in refused.output, refused.output
    assert board_digests(board) == before  # nothing of the board changed


def test_a_colliding_row_is_refused(world, tmp_path):
    board = board_copy(world, tmp_path)
    clash = write_config(tmp_path / "clash.yaml", world["root"], world["weights"],
                         [{"name": "webp", "options": {"method": 0}, "rate_points": [10, 80]}])
    made = invoke("submit", clash, "--rows", "webp", "--board", board, "--out", tmp_path / "bundle",
                  "--store", tmp_path / "store", "--no-progress")
    assert made.exit_code == 0, made.output
    refused = invoke("merge", board, tmp_path / "bundle")
    assert refused.exit_code == 2 and "row 'webp' is already on the board" in refused.output


def test_precision_is_compared_as_the_precision_that_ran(world, tmp_path):
    """The board ran in fp32. `precision: auto` is the board's protocol wherever it resolves to fp32; another
    precision is refused as the task model it gives, and the message names the precision to set."""
    from taskcodec_plugins.torch_utils import resolve_precision

    board = world["tmp"] / "board"
    for precision in ("bf16", "auto"):
        config = write_config(tmp_path / f"{precision}.yaml", world["root"], world["weights"],
                              [NEW_ROWS["webp-fast"]])
        raw = yaml.safe_load(config.read_text())
        raw["task"]["options"]["precision"] = precision
        config.write_text(yaml.safe_dump(raw, sort_keys=False))
        made = invoke("submit", config, "--rows", "webp-fast", "--board", board, "--out", tmp_path / f"b-{precision}",
                      "--store", tmp_path / "store", "--no-progress", "--workers", "1")
        if resolve_precision(precision, "cpu") == "fp32":
            assert made.exit_code == 0, made.output
        else:
            assert made.exit_code == 2, made.output
            assert "ran in bf16 here and in fp32 for the board" in made.output
            assert "set task.options.precision: fp32" in made.output and "protocol" not in made.output


def test_submit_refuses_other_weights_other_images_and_another_protocol(world, tmp_path):
    board = world["tmp"] / "board"
    other_weights = write_config(tmp_path / "w.yaml", world["root"], random_checkpoint(tmp_path / "w2.ckpt", seed=1),
                                 [NEW_ROWS["webp-fast"]])
    refused = invoke("submit", other_weights, "--rows", "webp-fast", "--board", board, "--out", tmp_path / "b1",
                     "--store", tmp_path / "store", "--no-progress")
    assert refused.exit_code == 2 and "other weights" in refused.output and not (tmp_path / "b1" / "bundle.json").exists()
    other_root = tmp_path / "data"
    shutil.copytree(world["root"], other_root)
    some_image = sorted(p for p in other_root.rglob("*.jpg"))[0]
    shutil.copy(sorted(p for p in other_root.rglob("*.jpg"))[1], some_image)  # one image replaced by another
    other_data = write_config(tmp_path / "d.yaml", other_root, world["weights"], [NEW_ROWS["webp-fast"]])
    refused = invoke("submit", other_data, "--rows", "webp-fast", "--board", board, "--out", tmp_path / "b2",
                     "--store", tmp_path / "store", "--no-progress")
    assert refused.exit_code == 2 and "fingerprint" in refused.output and "other images" in refused.output
    other_metrics = write_config(tmp_path / "m.yaml", world["root"], world["weights"], [NEW_ROWS["webp-fast"]],
                                 metrics=["verification"])
    refused = invoke("submit", other_metrics, "--rows", "webp-fast", "--board", board, "--out", tmp_path / "b3",
                     "--store", tmp_path / "store", "--no-progress")
    assert refused.exit_code == 2 and "protocol" in refused.output
    unknown = invoke("submit", world["mine"], "--rows", "nope", "--board", board, "--out", tmp_path / "b4")
    assert unknown.exit_code == 2 and "nope" in unknown.output and "webp-fast" in unknown.output


def test_a_board_renders_again_from_its_own_files(world, tmp_path):
    """`taskcodec leaderboard BOARD --from-files`: after the renderer changed (e.g. gained intervals), a board
    is rendered again without its store: the same rows and per-sample files, a record that it was."""
    board = board_copy(world, tmp_path)
    document = json.loads((board / "results.json").read_text())
    assert "over pairs" in (board / "README.md").read_text()  # verification intervals resample pairs
    for entry in document["bd"]["bd"]:  # as rendered by a taskcodec without verification intervals
        entry["bd_rate_ci95"] = None
    (board / "results.json").write_text(json.dumps(document))
    samples = (board / "samples.csv.gz").read_bytes()
    again = invoke("leaderboard", board, "--from-files")
    assert again.exit_code == 0 and "re-rendered" in again.output, again.output
    rendered = json.loads((board / "results.json").read_text())
    assert rendered["rows"] == document["rows"]
    assert gzip.decompress((board / "samples.csv.gz").read_bytes()) == gzip.decompress(samples)
    assert rendered["provenance"]["rerendered"]["command"].endswith("--from-files")
    assert all(v.ok for v in verify_board(board, get_plugin_manager().registry))
    assert "already up to date" in invoke("leaderboard", board, "--from-files").output
    refused = invoke("leaderboard", tmp_path, "--from-files")
    assert refused.exit_code != 0 and "published board" in refused.output


def test_a_column_that_only_other_rows_fill_does_not_make_reference_rows_differ(tmp_path):
    from taskcodec.board_merge import Source, differences

    reference = {"codec": "none", "rate_point": None, "bpp": 8.0, "accuracy": 0.9}
    document = {"rows": [reference], "provenance": {"dataset": {"fingerprint": "f"}, "task": None, "config": {}}}
    board = Source(tmp_path / "board", {**document, "rows": [{**reference, "estimated_bpp": None}]})
    bundle = Source(tmp_path / "bundle", document)
    assert differences(board, bundle) == []
    other = Source(tmp_path / "other", {**document, "rows": [{**reference, "accuracy": 0.8}]})
    assert "uncompressed reference row" in differences(board, other)[0]
