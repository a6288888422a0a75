"""The torch modules of MobileFaceNet (see :mod:`taskcodec_plugins.tasks.face_embedders.mobilefacenet` for the
layout): imported only when a network is built, so that registering plugins does not load torch."""
from __future__ import annotations

from typing import Any

from torch import nn

BOTTLENECKS = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


class ConvBlock(nn.Module):
    """conv (no bias) -> BN [-> PReLU]; keys conv.*, bn.*, prelu.*"""

    def __init__(self, cin: int, cout: int, kernel: Any, stride: int = 1, padding: Any = 0,
                 groups: int = 1, linear: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.prelu = None if linear else nn.PReLU(cout)

    def forward(self, x: Any) -> Any:
        x = self.bn(self.conv(x))
        return x if self.prelu is None else self.prelu(x)


class Bottleneck(nn.Module):
    """1x1 expand, BN, PReLU, 3x3 depthwise, BN, PReLU, 1x1 project, BN; keys conv.0 .. conv.7"""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        self.residual = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.PReLU(hidden),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
            nn.PReLU(hidden),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )

    def forward(self, x: Any) -> Any:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileFaceNet(nn.Module):
    """The whole network; ``input_size`` (h, w) sets the global depthwise kernel (7x6 for 112x96)."""

    def __init__(self, embedding_size: int = 128, input_size: tuple[int, int] = (112, 96)) -> None:
        super().__init__()
        self.conv1 = ConvBlock(3, 64, 3, 2, 1)
        self.dw_conv1 = ConvBlock(64, 64, 3, 1, 1, groups=64)
        blocks, cin = [], 64
        for t, c, n, s in BOTTLENECKS:
            for i in range(n):
                blocks.append(Bottleneck(cin, c, s if i == 0 else 1, t))
                cin = c
        self.blocks = nn.Sequential(*blocks)
        self.conv2 = ConvBlock(cin, 512, 1)
        h, w = input_size[0] // 16, input_size[1] // 16  # four stride-2 stages: 112x96 -> 7x6
        self.linear7 = ConvBlock(512, 512, (h, w), groups=512, linear=True)
        self.linear1 = ConvBlock(512, embedding_size, 1, linear=True)

    def forward(self, x: Any) -> Any:
        x = self.blocks(self.dw_conv1(self.conv1(x)))
        x = self.linear1(self.linear7(self.conv2(x)))
        return x.flatten(1)
