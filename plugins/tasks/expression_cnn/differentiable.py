"""The expression classifier as torch code for task-aware codec training
(:meth:`taskcodec_plugins.tasks.expression_cnn.task.ExpressionCNN.differentiable`, protocol
``taskcodec.DifferentiableTask``): its own file, because codec training is a job of its own
beside the task's inference and checkpoints."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from taskcodec import TaskcodecError
from taskcodec_plugins.tasks.expression_cnn.model import is_class_index, normalise, save_checkpoint


class ClassifierTrainingView:
    """:meth:`ExpressionCNN.differentiable`: the network as torch code (a ``taskcodec.DifferentiableTask``).

    Inputs are float batches in [0, 1] with the classifier's channels; the network's
    Sequential layout ends in ``..., Flatten, Dropout, Linear``."""

    checkpoint_option = "checkpoint"

    def __init__(self, module: Any, meta: dict[str, Any]):
        import copy

        self.module, self.meta = module, meta
        self.reference = copy.deepcopy(module).eval()  # the loaded weights, frozen: feature targets
        for p in self.reference.parameters():
            p.requires_grad_(False)

    def _targets(self, labels: list[Any], device: Any) -> Any:
        import torch

        n = len(self.meta["classes"])
        if not all(is_class_index(label, n) for label in labels):
            raise TaskcodecError("expression-cnn: task-aware codec training needs class-index labels "
                                 "(e.g. FER+ with dataset option mode: majority)")
        return torch.tensor([int(label) for label in labels], device=device)

    def features(self, x: Any) -> Any:
        return self.module[:-2](normalise(x * 255.0))

    def target_features(self, x: Any) -> Any:
        return self.reference[:-2](normalise(x * 255.0))

    def logits(self, x: Any) -> Any:
        return self.module(normalise(x * 255.0))

    def loss(self, x_hat: Any, x: Any, labels: list[Any]) -> Any:
        import torch.nn.functional as F

        return F.cross_entropy(self.logits(x_hat), self._targets(labels, x_hat.device))

    def accuracy(self, x_hat: Any, x: Any, labels: list[Any]) -> float:
        return float((self.logits(x_hat).argmax(1) == self._targets(labels, x_hat.device)).float().mean())

    def save(self, path: str | Path, metadata: dict[str, Any]) -> None:
        save_checkpoint(Path(path), self.module, {**self.meta, "joint_codec_training": metadata})
