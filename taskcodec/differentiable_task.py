"""What :meth:`taskcodec.Task.differentiable` returns: the task model as torch code, for task-aware
codec training (``taskcodec train-codec`` with mode ``task`` or ``joint``).

Tensors are ``torch.Tensor``; torch is named only for type checkers, so importing this module
imports no torch.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch


@runtime_checkable
class DifferentiableTask(Protocol):
    """The members a codec training uses; a task's training view needs no base class, only these.

    Every ``x`` and ``x_hat`` is a float batch, N x C x H x W, values in [0, 1], with the channels
    of the dataset's images; ``x_hat`` is the codec's reconstruction of ``x``.
    """

    module: "torch.nn.Module"
    """The network whose parameters joint training updates (and puts in eval mode: batch norms keep
    their statistics)."""

    def features(self, x: "torch.Tensor") -> "torch.Tensor":
        """The feature extractor f of the feature loss ``|f(x_hat) - f_target(x)|^2``."""
        ...

    def target_features(self, x: "torch.Tensor") -> "torch.Tensor":
        """:meth:`features` with the model as loaded, frozen: the feature loss's target (in joint
        training a target that moves with the model could collapse)."""
        ...

    def loss(self, x_hat: "torch.Tensor", x: "torch.Tensor", labels: list[Any]) -> "torch.Tensor":
        """The task loss on the reconstructions, a scalar tensor (``labels``: the samples' labels)."""
        ...

    def accuracy(self, x_hat: "torch.Tensor", x: "torch.Tensor", labels: list[Any]) -> float:
        """A task score on the reconstructions in [0, 1] for reports (higher = better)."""
        ...

    def save(self, path: str | Path, metadata: dict[str, Any]) -> None:
        """Write the (jointly trained) model as a file that the task loads through one of its options
        (``metadata``: what the codec training records about itself, plain Python values)."""
        ...
