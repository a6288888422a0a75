"""Registering the built-in plugins stays light: listing them (what ``taskcodec plugins`` does) imports
neither torch nor compressai; the torch modules of the models load only when a model is built."""
from __future__ import annotations

import json
import subprocess
import sys

BUILT_IN = ("classical-codecs", "compnet-png", "expression-cnn", "face-embedders", "fer-datasets",
            "image-folder-datasets", "learned-codecs", "lfw-dataset", "metrics", "synthetic-faces")
HEAVY = ("torch", "compressai", "torchvision")


def _run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr + out.stdout
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_listing_the_built_in_plugins_imports_neither_torch_nor_compressai() -> None:
    facts = _run(
        "import contextlib, io, json, sys\n"
        "from taskcodec.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['plugins'], standalone_mode=False)\n"
        "from taskcodec.pluginmanager import get_plugin_manager\n"
        "pm = get_plugin_manager()\n"
        "print(json.dumps({'plugins': {p.name: p.error for p in pm.plugins},\n"
        "                  'registered': sum(len(p.registered) for p in pm.plugins),\n"
        "                  'heavy': sorted(m for m in %r if m in sys.modules)}))\n" % (HEAVY,))
    assert {name: facts["plugins"].get(name, "missing") for name in BUILT_IN} == dict.fromkeys(BUILT_IN)
    assert facts["registered"] >= 20
    assert facts["heavy"] == []


def test_model_modules_load_torch_only_when_a_model_is_built() -> None:
    facts = _run(
        "import json, sys\n"
        "from taskcodec_plugins.codecs.compnet_png import models\n"
        "from taskcodec_plugins.tasks.face_embedders import mobilefacenet\n"
        "before = sorted(m for m in %r if m in sys.modules)\n"
        "model = models.build_compnet(2, 4, 4, width=16)\n"
        "net = mobilefacenet.build_mobilefacenet()\n"
        "print(json.dumps({'before': before, 'after': sorted(m for m in %r if m in sys.modules),\n"
        "                  'classes': [type(model).__module__ + '.' + type(model).__qualname__,\n"
        "                              type(net).__module__ + '.' + type(net).__qualname__],\n"
        "                  'lookup': models.CompNet is type(model)}))\n" % (HEAVY, HEAVY))
    assert facts["before"] == []
    assert {"torch", "compressai"} <= set(facts["after"])
    assert facts["classes"] == ["taskcodec_plugins.codecs.compnet_png.network.CompNet",
                                "taskcodec_plugins.tasks.face_embedders.mobilefacenet_network.MobileFaceNet"]
    assert facts["lookup"] is True
