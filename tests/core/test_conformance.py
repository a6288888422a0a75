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
    return {r.name: r for r in conformance.run_checks(codec)}


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
    results = conformance.run_checks(module.JpegLS())
    assert all(r.passed for r in results), [r for r in results if not r.passed]
