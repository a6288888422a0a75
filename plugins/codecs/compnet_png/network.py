"""The torch modules of the ``compnet-png`` codec (see :mod:`taskcodec_plugins.codecs.compnet_png.models` for the
design): imported only when a model is built, so that listing and registering plugins loads neither torch
nor compressai."""
from __future__ import annotations

from typing import Any

from taskcodec import ensure_torchvision

ensure_torchvision()  # before compressai imports torchvision
import torch  # noqa: E402
from compressai.entropy_models import EntropyBottleneck  # noqa: E402
from compressai.models import CompressionModel  # noqa: E402
from torch import nn  # noqa: E402

from taskcodec_plugins.codecs.compnet_png.models import (DEFAULT_WIDTH, CompNetArch, density_init_scale,  # noqa: E402
                                                         stage_widths)


def conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


class ResidualBlock(nn.Module):
    """x + conv(PReLU(conv(x)))."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv(width, width), nn.PReLU(width), conv(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class CompNet(CompressionModel):
    """Encoder (CompNet), uniform quantiser, decoder (RecNet) and the PNG rate proxy."""

    def __init__(self, channels: int, levels: int, downsampling: int, in_channels: int = 3,
                 width: int = DEFAULT_WIDTH) -> None:
        super().__init__()
        self.arch = CompNetArch(channels, levels, downsampling, in_channels, width)
        widths = stage_widths(width, downsampling)  # finest resolution first
        encoder: list[nn.Module] = []
        for cin, cout in zip((in_channels, *widths), widths):
            encoder += [conv(cin, cout, stride=2), nn.PReLU(cout)]
        self.encoder = nn.Sequential(*encoder, ResidualBlock(width), conv(width, channels))
        decoder: list[nn.Module] = [conv(channels, width), nn.PReLU(width), ResidualBlock(width)]
        for cin, cout in zip(widths[:0:-1], widths[-2::-1]):
            decoder += [conv(cin, 4 * cout), nn.PixelShuffle(2), nn.PReLU(cout)]
        self.decoder = nn.Sequential(*decoder, conv(widths[0], 4 * in_channels), nn.PixelShuffle(2))
        self.entropy_bottleneck = EntropyBottleneck(channels, init_scale=density_init_scale(levels))

    @property
    def downsampling(self) -> int:
        """Input sides must be multiples of this (pad before calling)."""
        return self.arch.downsampling

    # the pieces ---------------------------------------------------------------------
    def quantize(self, y: torch.Tensor) -> torch.Tensor:
        """The symbols ``round(y * (levels-1))`` as floats; straight-through gradients in training."""
        scaled = y * (self.arch.levels - 1)
        rounded = torch.round(scaled)
        return scaled + (rounded - scaled).detach() if self.training else rounded

    def reconstruct(self, symbols: torch.Tensor) -> torch.Tensor:
        """The decoder on (float) symbols; clamped to [0, 1] in eval mode."""
        x_hat = self.decoder(symbols / (self.arch.levels - 1))
        return x_hat if self.training else x_hat.clamp(0.0, 1.0)

    def likelihoods(self, symbols: torch.Tensor) -> torch.Tensor:
        """Likelihood of each symbol's Sub-filter residual (first column: the symbol), B x C x h x w."""
        residual = torch.cat([symbols[..., :1], symbols[..., 1:] - symbols[..., :-1]], dim=-1)
        b, c, h, w = residual.shape
        values = residual.transpose(0, 1).reshape(c, 1, -1)
        eb = self.entropy_bottleneck
        likelihood, _, _ = eb._likelihood(values)
        if eb.use_likelihood_bound:
            likelihood = eb.likelihood_lower_bound(likelihood)
        return likelihood.reshape(c, b, h, w).transpose(0, 1)

    def rate_bits(self, symbols: torch.Tensor) -> torch.Tensor:
        """The rate proxy: bits per image (tensor B) of PNG-like coding of ``symbols``."""
        return -torch.log2(self.likelihoods(symbols)).flatten(1).sum(1)

    # the whole ------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        """``x``: B x in_channels x H x W in [0, 1], H and W multiples of ``downsampling``.

        Returns ``x_hat``, ``rate_bits`` (the proxy, bits per image, tensor B), ``symbols``
        (B x channels x H/d x W/d, float, integer-valued) and, for CompressAI-style losses,
        ``likelihoods`` ({"r": the residuals' likelihoods}; ``sum -log2`` of them is ``rate_bits``).
        """
        symbols = self.quantize(torch.sigmoid(self.encoder(x)))
        likelihoods = self.likelihoods(symbols)
        return {"x_hat": self.reconstruct(symbols), "symbols": symbols,
                "rate_bits": -torch.log2(likelihoods).flatten(1).sum(1), "likelihoods": {"r": likelihoods}}

    @torch.no_grad()
    def encode_symbols(self, x: torch.Tensor) -> Any:
        """The uint8 symbols (numpy) of ``x`` in [0, 1]: in x H x W -> C x h x w (one image),
        B x in x H x W -> B x C x h x w. Exact rounding whatever the module's mode."""
        batch = x if x.ndim == 4 else x[None]
        scaled = torch.sigmoid(self.encoder(batch)) * (self.arch.levels - 1)
        symbols = torch.round(scaled).clamp_(0, self.arch.levels - 1).to(torch.uint8).cpu().numpy()
        return symbols if x.ndim == 4 else symbols[0]

    @torch.no_grad()
    def decode_symbols(self, symbols: Any) -> torch.Tensor:
        """x_hat in [0, 1] from uint8 symbols: C x h x w -> in x H x W, B x C x h x w -> B x in x H x W."""
        s = torch.as_tensor(symbols)
        batch = s if s.ndim == 4 else s[None]
        device = next(self.parameters()).device
        x_hat = self.decoder(batch.to(device=device, dtype=torch.float32) / (self.arch.levels - 1))
        x_hat = x_hat.clamp(0.0, 1.0)
        return x_hat if s.ndim == 4 else x_hat[0]
