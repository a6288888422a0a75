"""Rate-quality figures for leaderboards (matplotlib, Agg canvas, byte-for-byte reproducible PNGs).

The figure is drawn on a :class:`matplotlib.figure.Figure` with an Agg canvas directly, so pyplot's global
state and the session's backend are left alone, and under matplotlib's default style, so a user's
matplotlibrc does not change the published image.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .bd import monotone_front

#: The x axis switches to log scale when the largest bpp is more than this many times the smallest.
LOG_X_RATIO = 4.0
DPI = 120
#: Row names and titles come from users and plugins: a ``$`` must show as a dollar sign, never start
#: mathtext (an unbalanced one would make the whole plot fail).
PLAIN_TEXT = {"text.parse_math": False}

AXIS_LABELS = {
    "bpp": "rate (bits per pixel)",
    "psnr": "PSNR (dB)",
    "ms_ssim": "MS-SSIM",
}


def axis_label(metric: str, percent: bool) -> str:
    """Human label of a metric column, with its unit."""
    base = AXIS_LABELS.get(metric, metric.replace("_", " "))
    return f"{base} (%)" if percent else base


def plot_rate_quality(path: Path, results: pd.DataFrame, *, title: str, metrics: Sequence[str],
                      codecs: Sequence[str], percent: Sequence[bool], higher_is_better: bool = True,
                      reference: str = "none") -> None:
    """Write one panel per metric (x: bpp, y: metric) with a line per codec, in ``codecs`` order.

    Points off a codec's monotone front (not used for BD) get hollow markers. The ``reference`` codec's
    metric is drawn as a dashed horizontal line when finite. ``percent[i]`` scales panel i by 100.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    coded = results[results["codec"] != reference]
    bpp = coded["bpp"].to_numpy(dtype=float)
    bpp = bpp[np.isfinite(bpp) & (bpp > 0)]
    log_x = bpp.size > 0 and bpp.max() / bpp.min() > LOG_X_RATIO

    import matplotlib.style

    with matplotlib.style.context("default"), matplotlib.rc_context(PLAIN_TEXT):
        fig = Figure(figsize=(5.6 * len(metrics) + 1.0, 4.6), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, len(metrics), squeeze=False)[0]
        colors = matplotlib.colormaps["tab10"].colors
        for ax, metric, pct in zip(axes, metrics, percent):
            scale = 100.0 if pct else 1.0
            for i, codec in enumerate(codecs):
                rows = coded[coded["codec"] == codec].sort_values("bpp", kind="stable")
                x = rows["bpp"].to_numpy(dtype=float)
                y = rows[metric].to_numpy(dtype=float)
                ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
                if not ok.any():
                    continue
                x, y = x[ok], y[ok]
                color = colors[i % len(colors)]
                marker = "osD^vP*Xhp<>"[i % 12]  # 12 markers over 10 colours: no two rows alike up to 60
                ax.plot(x, y * scale, "-" + marker, color=color, lw=1.4, ms=5.5, label=codec)
                fx, _ = monotone_front(x, y, higher_is_better if metric == metrics[0] else True)
                off = ~np.isin(x, fx)
                ax.plot(x[off], y[off] * scale, marker, mfc="white", mec=color, ms=5.5, ls="none")
            ref = results.loc[results["codec"] == reference, metric].to_numpy(dtype=float)
            ref = ref[np.isfinite(ref)]
            if ref.size:
                ax.axhline(ref.mean() * scale, color="0.35", ls="--", lw=1.1, label=f"uncompressed ({reference})")
            if log_x:
                ax.set_xscale("log")
                ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel(axis_label("bpp", False) + (", log scale" if log_x else ""))
            ax.set_ylabel(axis_label(metric, pct))
            ax.grid(True, which="major", alpha=0.3)
            ax.legend(fontsize="small", loc="best")
        fig.suptitle(title)
        fig.savefig(path, dpi=DPI, metadata={"Software": None})
