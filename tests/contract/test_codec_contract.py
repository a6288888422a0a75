"""The codec contract (:mod:`taskcodec.conformance.codec_checks`, what ``taskcodec check codec`` runs) over every codec in
the plugin manager's registry, built-in and third-party, constructed with its default options.

A codec that declares ``needs_options = True`` (it cannot work without configuration, e.g. a folder of
trained models) is skipped here; its plugin's tests run the same checks on configured instances:
``globals().update(contract_for_configured_codecs())`` next to a ``codec`` fixture (see
``tests/plugins/codecs/test_learned_codec.py``).
"""
from __future__ import annotations

import pytest

from taskcodec import Codec, conformance
from taskcodec.pluginmanager import get_plugin_manager

PM = get_plugin_manager()
CODEC_NAMES = PM.registry.names("codec")


@pytest.fixture(scope="module", params=CODEC_NAMES)
def codec(request: pytest.FixtureRequest) -> Codec:
    cls = PM.get("codec", request.param).target
    if cls.needs_options:
        pytest.skip(f"codec {cls.name!r} needs options (needs_options = True): its own tests run this contract")
    return cls()


def test_some_codecs_are_registered() -> None:
    assert CODEC_NAMES, f"no codec registered; plugin failures: {[(p.name, p.error) for p in PM.failures]}"


def test_registered_under_its_name(codec: Codec) -> None:
    assert PM.get("codec", codec.name).target is type(codec)


@pytest.mark.parametrize("check", list(conformance.CODEC_CHECKS))
def test_contract(codec: Codec, check: str) -> None:
    conformance.CODEC_CHECKS[check](codec)


def contract_for_configured_codecs() -> dict[str, object]:
    """The contract's test, for a codec's own test module to run on its configured instances."""
    return {"test_contract": test_contract}
