"""The command line as a user meets it: run, rerun, re-render, errors."""
from __future__ import annotations

import pandas as pd
from click.testing import CliRunner

from taskcodec.cli import main
from tests.helpers import textconfig, write_images

CONFIG = textconfig(
    """
    benchmark: tiny
    dataset: {{name: image-dir, root: {root}}}
    metrics: [psnr]
    codecs:
      - {{name: jpeg, rate_points: [10, 50, 90]}}
      - {{name: quant-zlib, rate_points: [4, 16, 64]}}
    runner: {{workers: 1}}
    """
)


def test_run_rerun_and_rerender(third_party_plugin, tmp_path):
    images = write_images(tmp_path / "images", count=4)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(CONFIG.format(root=images))
    out, store = tmp_path / "board", tmp_path / "store"
    cli = CliRunner()
    args = ["run", str(cfg), "--out", str(out), "--store", str(store), "--no-progress"]

    first = cli.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "wrote" in first.output
    results = pd.read_csv(out / "results.csv")
    assert (results.codec == "quant-zlib").sum() == 3  # the third-party codec got its rows
    assert "quant-zlib" in (out / "README.md").read_text()

    again = cli.invoke(main, args)
    assert again.exit_code == 0 and "up to date" in again.output
    assert "nothing to compute" in again.output

    (out / "README.md").unlink()
    rerender = cli.invoke(main, ["leaderboard", str(out), "--store", str(store)])
    assert rerender.exit_code == 0, rerender.output
    assert (out / "README.md").is_file()
    assert pd.read_csv(out / "results.csv").equals(results)


def test_leaderboard_without_results_names_what_is_missing(third_party_plugin, tmp_path):
    images = write_images(tmp_path / "images", count=2)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(CONFIG.format(root=images))
    result = CliRunner().invoke(main, ["leaderboard", str(cfg), "--store", str(tmp_path / "empty"), "--out", str(tmp_path / "b")])
    assert result.exit_code == 2
    assert "no results store at" in result.output and "taskcodec run" in result.output
    assert not (tmp_path / "empty").exists() and not (tmp_path / "b").exists()  # computing nothing creates nothing
    from taskcodec.store import Store

    Store(tmp_path / "other").close()  # a store without this benchmark's results
    result = CliRunner().invoke(main, ["leaderboard", str(cfg), "--store", str(tmp_path / "other"), "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "taskcodec run" in result.output


def test_config_error_exits_2_naming_file_and_key(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("benchmark: bad\ndataset: {name: synthetic-faces}\ncodecs: [{name: jpg}]\n")
    result = CliRunner().invoke(main, ["run", str(cfg), "--store", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert f"{cfg}: codecs[0].name: no codec named 'jpg'. Did you mean 'jpeg'" in result.output


def test_missing_dataset_root_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TASKCODEC_DATA", str(tmp_path))
    cfg = tmp_path / "kodak.yaml"
    cfg.write_text("benchmark: k\ndataset: {name: kodak, root: kodak}\ncodecs: [jpeg]\n")
    result = CliRunner().invoke(main, ["run", str(cfg), "--store", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert "24 files missing" in result.output and str(tmp_path / "kodak") in result.output


def test_help_and_lists():
    cli = CliRunner()
    assert "taskcodec run configs/quickstart/board.yaml" in cli.invoke(main, ["--help"]).output
    codecs = cli.invoke(main, ["list", "codecs"]).output
    assert "jpeg2000" in codecs and "quality" in codecs
    assert "synthetic-faces" in cli.invoke(main, ["list", "datasets"]).output
