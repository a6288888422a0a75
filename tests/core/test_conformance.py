"""The shipped codec contract (taskcodec.conformance, `taskcodec check codec`): it passes a good codec and fails a
codec that breaks a rule, naming the check and the reason."""
from __future__ import annotations

import numpy as np
from click.testing import CliRunner

import taskcodec
from taskcodec import conformance
from taskcodec.cli import main
from tests.integrity_plugins import DriftingDecoder, GlobalCache


class CroppingDecoder(taskcodec.Codec):
    """Drops the last row on decode: the shape rule."""

    name = "cropping-test"
    rate_parameter = None
    default_rate_points = (None,)
    description = "test"

    def encode(self, image, rate_point):
        return np.ascontiguousarray(image).tobytes() + bytes(image.shape[:2]) + bytes([image.ndim])

    def decode(self, data):
        h, w, ndim = data[-3], data[-2], data[-1]
        shape = (h, w) if ndim == 2 else (h, w, 3)
        return np.frombuffer(data[:-3], np.uint8).reshape(shape)[:-1].copy()


class FragileDecoder(CroppingDecoder):
    """Lets an IndexError escape on a damaged stream... through the base class's guard, which names the codec."""

    name = "fragile-test"

    def decode(self, data):
        h, w, ndim = data[-3], data[-2], data[-1]
        shape = (h, w) if ndim == 2 else (h, w, 3)
        return np.frombuffer(data[:-3], np.uint8).reshape(shape).copy()


def _results(codec) -> dict[str, conformance.CheckResult]:
    return {r.name: r for r in conformance.run_checks(conformance.CODEC_CHECKS, codec)}


def test_a_contract_breaking_codec_fails_with_the_check_and_the_reason() -> None:
    drifting = _results(DriftingDecoder())
    assert not drifting["determinism"].passed and "decodes other pixels" in drifting["determinism"].detail
    cropping = _results(CroppingDecoder())
    assert not cropping["round-trip"].passed and "expected uint8 (37, 53)" in cropping["round-trip"].detail
    cache = _results(GlobalCache())
    assert not cache["another-process"].passed and "another process" in cache["another-process"].detail


def test_a_well_behaved_codec_passes_every_check() -> None:
    results = _results(FragileDecoder())  # library errors on damaged streams become CodecError in the guard
    assert all(r.passed for r in results.values()), [r for r in results.values() if not r.passed]


def test_check_codec_command() -> None:
    ok = CliRunner().invoke(main, ["check", "codec", "png"])
    assert ok.exit_code == 0, ok.output
    assert "9 passed, 0 failed" in ok.output and "ok    another-process" in ok.output
    only = CliRunner().invoke(main, ["check", "codec", "jpeg", "--option", "subsampling='420'", "--only", "metadata"])
    assert only.exit_code == 0 and "1 passed" in only.output, only.output
    bad = CliRunner().invoke(main, ["check", "codec", "jpeg", "--only", "speed"])
    assert bad.exit_code == 2 and "no such check" in bad.output


def test_the_readme_example_codec_passes_every_check(tmp_path, monkeypatch) -> None:
    import importlib
    import re

    from tests.helpers import REPO

    text = (REPO / "README.md").read_text()
    block = re.search(r"```python\n(import imagecodecs\nimport taskcodec\n.*?class JpegLS.*?)```", text, re.S)
    assert block, "README.md's example codec plugin (class JpegLS) was not found"
    (tmp_path / "readme_jpegls.py").write_text(block.group(1))
    monkeypatch.syspath_prepend(str(tmp_path))  # importable here and, through sys.path, in the other process
    module = importlib.import_module("readme_jpegls")
    results = conformance.run_checks(conformance.CODEC_CHECKS, module.JpegLS())
    assert all(r.passed for r in results), [r for r in results if not r.passed]


# ---------------------------------------------------------------------------------------------- datasets, metrics
class FlakyDataset(taskcodec.Dataset):
    """Repeats an id and draws new pixels on every read: two rules broken; accepts any root."""

    name = "flaky-test"
    needs_root = True

    def __init__(self, root=None, split="test"):
        self.root = root

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> taskcodec.Sample:
        if index >= 4:
            raise IndexError(index)
        pixels = np.random.default_rng().integers(0, 256, (8, 8), dtype=np.uint8)
        return taskcodec.Sample(id=f"s{min(index, 2)}", image=pixels, label=0)


def _dataset_results(cls, **options) -> dict[str, conformance.CheckResult]:
    build = lambda **changes: cls(**{**options, **changes})  # noqa: E731
    case = conformance.DatasetUnderTest(build(), build, limit=8)
    return {r.name: r for r in conformance.run_checks(conformance.DATASET_CHECKS, case)}


def test_a_dataset_that_breaks_its_contract_fails_naming_the_rule() -> None:
    results = _dataset_results(FlakyDataset, root=None)
    assert "'s2' repeats" in results["samples"].detail
    assert "changes from one read to the next" in results["stable"].detail
    assert "was accepted; expected a DatasetError" in results["missing-root"].detail


def test_built_in_datasets_and_image_metrics_pass(tmp_path) -> None:
    from taskcodec.pluginmanager import get_plugin_manager
    from tests.helpers import write_images

    pm = get_plugin_manager()
    synthetic = _dataset_results(pm.get("dataset", "synthetic-faces").target, root=None, split="test")
    assert all(r.passed for r in synthetic.values()), synthetic
    write_images(tmp_path / "folder", 5)
    folder = _dataset_results(pm.get("dataset", "image-dir").target, root=tmp_path / "folder", split="test")
    assert all(r.passed for r in folder.values()), folder
    for name in ("psnr", "ms-ssim"):
        metric = pm.get("metric", name).target()
        assert all(r.passed for r in conformance.run_checks(conformance.IMAGE_METRIC_CHECKS, metric)), name


def test_check_dataset_and_metric_commands() -> None:
    assert CliRunner().invoke(main, ["check", "dataset", "synthetic-faces", "--limit", "8"]).exit_code == 0
    ok = CliRunner().invoke(main, ["check", "metric", "psnr"])
    assert ok.exit_code == 0 and "ok    values" in ok.output, ok.output
    task_metric = CliRunner().invoke(main, ["check", "metric", "accuracy"])
    assert task_metric.exit_code == 2 and "task metric" in task_metric.output
