"""The ``integer-hyperprior`` network in floating point, as it is trained.

A scale hyperprior (Ballé et al. 2018) built only from operations that have an exact integer
counterpart (:mod:`.integer_network` runs the trained model in integers): convolutions,
ReLU, sub-pixel upsampling (a convolution then ``pixel_shuffle``), per-channel gains. No GDN, no
transposed convolution, no mean prediction. One model serves every rate point: rate point ``i``
scales the latent by a learned per-channel gain before quantisation and by a learned inverse gain
after it (the "gained" variable-rate scheme of Cui et al. 2021), so the model trains once for all
lambdas.

Shapes: ``stages`` stride-2 analysis convolutions take an image to the latent ``y`` (M channels,
1/2^stages of the size); the hyper analysis takes ``y`` one more factor 2 down to ``z`` (Nz
channels), whose factorized prior (CompressAI's ``EntropyBottleneck``) is fixed per model; the
hyper synthesis predicts the log of each latent's Gaussian scale from the quantised ``z``.

Training (``forward``): additive uniform noise for the likelihoods, straight-through rounding for
what the synthesis transforms see, so that they learn on what the decoder gets.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
import torch.nn.functional as F

LOG_SCALE_MIN = math.log(0.11)  # CompressAI's lower bound on a Gaussian scale
LOG_SCALE_MAX = math.log(256.0)


def _conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2)


class Upsample(nn.Module):
    """Twice the size: a 3x3 convolution to 4x the channels, then ``pixel_shuffle``."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = _conv(cin, 4 * cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.conv(x), 2)


def _chain(layers: Sequence[nn.Module]) -> nn.Sequential:
    """Layers with a ReLU between consecutive ones (none after the last)."""
    out: list[nn.Module] = []
    for i, layer in enumerate(layers):
        out.append(layer)
        if i < len(layers) - 1:
            out.append(nn.ReLU())
    return nn.Sequential(*out)


def round_straight_through(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


class GainedHyperprior(nn.Module):
    """Variable-rate scale hyperprior: rate point ``i`` of ``rate_points`` uses gain row ``i``."""

    def __init__(self, N: int, M: int, Nz: int, in_channels: int, stages: int, rate_points: int):
        super().__init__()
        from compressai.entropy_models import EntropyBottleneck, GaussianConditional

        if stages < 1:
            raise ValueError("stages must be >= 1")
        self.N, self.M, self.Nz, self.in_channels, self.stages, self.rate_points = N, M, Nz, in_channels, stages, rate_points
        widths = [in_channels] + [N] * (stages - 1) + [M]
        self.g_a = _chain([_conv(widths[i], widths[i + 1], 5, 2) for i in range(stages)])
        self.g_s = _chain([Upsample(widths[i + 1], widths[i]) for i in reversed(range(stages))])
        self.h_a = _chain([_conv(M, N, 3), _conv(N, Nz, 5, 2)])
        self.h_s = _chain([Upsample(Nz, N), _conv(N, M, 3)])
        # rate point i: log gain starting on a ramp, so that the rate points start apart
        ramp = torch.linspace(-1.5, 1.5, rate_points) if rate_points > 1 else torch.zeros(1)
        self.log_gain = nn.Parameter(ramp[:, None].repeat(1, M).clone())
        self.log_inverse_gain = nn.Parameter(-ramp[:, None].repeat(1, M).clone())
        self.entropy_bottleneck = EntropyBottleneck(Nz)
        self.gaussian_conditional = GaussianConditional(None)

    @property
    def downsampling(self) -> int:
        """The input's sides must be multiples of this."""
        return 2 ** (self.stages + 1)

    def gains(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.log_gain[index].exp(), self.log_inverse_gain[index].exp()

    def log_scales(self, z_hat: torch.Tensor) -> torch.Tensor:
        return self.h_s(z_hat).clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)

    def forward(self, x: torch.Tensor, index: int) -> dict:
        gain, inverse_gain = self.gains(index)
        y = self.g_a(x) * gain[:, None, None]
        z = self.h_a(y)
        _, z_likelihoods = self.entropy_bottleneck(z)
        z_hat = round_straight_through(z) if self.training else torch.round(z)
        scales = self.log_scales(z_hat).exp()
        _, y_likelihoods = self.gaussian_conditional(y, scales)
        y_hat = round_straight_through(y) if self.training else torch.round(y)
        x_hat = self.g_s(y_hat * inverse_gain[:, None, None])
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    def aux_loss(self) -> torch.Tensor:
        return self.entropy_bottleneck.loss()


class RatePointView(nn.Module):
    """One rate point of a :class:`GainedHyperprior`, as the trainer sees a model: ``forward(x)``."""

    def __init__(self, model: GainedHyperprior, index: int):
        super().__init__()
        self.model = model
        self.index = index

    def forward(self, x: torch.Tensor) -> dict:
        return self.model(x, self.index)

    def aux_loss(self) -> torch.Tensor:
        return self.model.aux_loss()
