"""The public API is exact and enforced: plugins use only ``taskcodec.__all__``, every name there is
used by a plugin, and every hook and public method of the plugin base classes is documented."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import taskcodec
from taskcodec import hookspecs
from tests.helpers import REPO

PLUGINS = REPO / "plugins"
BASE_CLASSES = (taskcodec.Codec, taskcodec.Dataset, taskcodec.Task, taskcodec.TaskMetric, taskcodec.ImageMetric)


def _plugin_modules() -> list[Path]:
    return sorted(PLUGINS.rglob("*.py"))


def _taskcodec_uses(path: Path) -> tuple[list[str], list[str]]:
    """(names the module takes from taskcodec, submodules of taskcodec it imports), with line numbers."""
    names, submodules = [], []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        where = f"{path.relative_to(PLUGINS.parent)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "taskcodec":
                names += [f"{where} {alias.name}" for alias in node.names]
            elif node.module.startswith("taskcodec."):
                submodules.append(f"{where} from {node.module} import ...")
        elif isinstance(node, ast.Import):
            submodules += [f"{where} import {a.name}" for a in node.names if a.name.startswith("taskcodec.")]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "taskcodec":
            names.append(f"{where} {node.attr}")
    return names, submodules


def _all_uses() -> tuple[list[str], list[str]]:
    names, submodules = [], []
    for path in _plugin_modules():
        n, s = _taskcodec_uses(path)
        names += n
        submodules += s
    return names, submodules


def test_the_plugins_are_found():
    assert len(_plugin_modules()) > 20


def test_plugins_import_no_taskcodec_submodule():
    _, submodules = _all_uses()
    assert submodules == [], "plugins must import from taskcodec itself, not its submodules: " + "; ".join(submodules)


def test_plugins_use_only_names_in_all():
    names, _ = _all_uses()
    outside = [use for use in names if use.rsplit(" ", 1)[1] not in taskcodec.__all__]
    assert outside == [], f"names outside taskcodec.__all__: {outside}"


def test_every_public_name_is_used_by_a_plugin():
    used = {use.rsplit(" ", 1)[1] for use in _all_uses()[0]}
    assert sorted(set(taskcodec.__all__) - used) == []


def test_all_lists_each_name_once_and_each_exists():
    assert len(taskcodec.__all__) == len(set(taskcodec.__all__))
    assert [name for name in taskcodec.__all__ if not hasattr(taskcodec, name)] == []


def test_every_hook_has_a_docstring():
    hooks = [f for name, f in vars(hookspecs).items() if name.startswith("register_") and callable(f)]
    assert len(hooks) == 4
    assert [f.__name__ for f in hooks if not (f.__doc__ or "").strip()] == []


@pytest.mark.parametrize("base", BASE_CLASSES, ids=lambda c: c.__name__)
def test_every_public_method_of_a_base_class_has_a_docstring(base):
    methods = [name for name, member in vars(base).items()
               if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, classmethod))]
    assert methods
    assert [name for name in methods if not (inspect.getdoc(getattr(base, name)) or "").strip()] == []


def test_the_differentiable_task_protocol_documents_its_members():
    members = ["features", "target_features", "loss", "accuracy", "save"]
    assert [m for m in members if not (getattr(taskcodec.DifferentiableTask, m).__doc__ or "").strip()] == []
    assert "module" in taskcodec.DifferentiableTask.__annotations__
    assert inspect.signature(taskcodec.Task.differentiable).return_annotation in ("DifferentiableTask",
                                                                                taskcodec.DifferentiableTask)


def test_the_built_in_training_views_have_the_protocols_methods():
    from taskcodec_plugins.tasks.expression_cnn.differentiable import ClassifierTrainingView
    from taskcodec_plugins.tasks.face_embedders.base import EmbedderTrainingView

    for view in (ClassifierTrainingView, EmbedderTrainingView):
        methods = ("features", "target_features", "loss", "accuracy", "save")
        missing = [m for m in methods if not callable(getattr(view, m, None))]
        assert missing == [], f"{view.__name__} lacks {missing}"


def test_importing_taskcodec_imports_no_heavy_library():
    import subprocess
    import sys

    code = ("import sys, taskcodec; heavy = ('torch', 'torchvision', 'compressai', 'imagecodecs'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
