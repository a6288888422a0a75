"""Rate-quality figures for leaderboards (matplotlib, Agg canvas, byte-for-byte reproducible PNGs).

The figure is drawn on a :class:`matplotlib.figure.Figure` with an Agg canvas directly, so pyplot's global
state and the session's backend are left alone, and under matplotlib's default style, so a user's
matplotlibrc does not change the published image.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .bd import monotone_front

#: The x axis switches to log scale when the largest bpp is more than this many times the smallest.
LOG_X_RATIO = 4.0
DPI = 120
#: Row names and titles come from users and plugins: a ``$`` must show as a dollar sign, never start
#: mathtext (an unbalanced one would make the whole plot fail).
PLAIN_TEXT = {"text.parse_math": False}

#: Hues of the built-in codec families: a family has the same colour on every board, its rows (variants:
#: other options, models or task models) share it and differ by marker, line style and shade.
FAMILY_COLORS = {
    "jpeg": "#1f77b4", "jpeg2000": "#ff7f0e", "webp": "#2ca02c", "avif": "#d62728", "jpegxl": "#9467bd",
    "png": "#7f7f7f", "learned": "#8c564b", "integer-hyperprior": "#e377c2", "compnet-png": "#17becf",
    "trained": "#bcbd22",
}
#: Other families (plugins) get a hue of this palette chosen by a hash of their name: stable across boards.
OTHER_COLORS = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
                "#756bb1", "#636363", "#9c9ede", "#cedb9c")
VARIANT_MARKERS = "osD^vP*Xhp<>"
VARIANT_LINES = ("-", "--", "-.", ":")

AXIS_LABELS = {
    "bpp": "rate (bits per pixel)",
    "psnr": "PSNR (dB)",
    "ms_ssim": "MS-SSIM",
}


def axis_label(metric: str, percent: bool) -> str:
    """Human label of a metric column, with its unit."""
    base = AXIS_LABELS.get(metric, metric.replace("_", " "))
    return f"{base} (%)" if percent else base


def family_color(family: str) -> str:
    """The hue of a codec family: fixed for the built-ins, from a hash of the name for any other."""
    if family in FAMILY_COLORS:
        return FAMILY_COLORS[family]
    return OTHER_COLORS[int(hashlib.sha256(family.encode()).hexdigest(), 16) % len(OTHER_COLORS)]


def row_styles(codecs: Sequence[str], families: Mapping[str, str]) -> dict[str, dict]:
    """Colour, marker and line style of each row: its family's hue, shaded lighter for each further
    variant of the family on this board, with the variant's own marker and dash pattern."""
    from matplotlib.colors import to_rgb

    seen: dict[str, int] = {}
    styles = {}
    for codec in codecs:
        family = families.get(codec) or codec.split("/")[0]
        k = seen.get(family, 0)
        seen[family] = k + 1
        base = np.array(to_rgb(family_color(family)))
        shade = min(0.55, 0.22 * k)  # mix with white: variants stay recognisably the family's
        styles[codec] = {"color": tuple(base + (1.0 - base) * shade), "marker": VARIANT_MARKERS[k % len(VARIANT_MARKERS)],
                         "ls": VARIANT_LINES[k % len(VARIANT_LINES)]}
    return styles


def plot_rate_quality(path: Path, results: pd.DataFrame, *, title: str, metrics: Sequence[str],
                      codecs: Sequence[str], percent: Sequence[bool], higher_is_better: bool = True,
                      reference: str = "none", families: Mapping[str, str] | None = None,
                      anchors: Sequence[str] = ()) -> None:
    """Write one panel per metric (x: bpp, y: metric) with a line per codec, in ``codecs`` order.

    ``families`` maps a row to its codec family (the registered codec it runs; default: the row name
    before any ``/``): see :func:`row_styles`. ``anchors`` are drawn bold and on top, the other rows
    thinner, so that many rows stay readable; the legend sits beside the panels. Points off a codec's
    monotone front (not used for BD) get hollow markers. The ``reference`` codec's metric is drawn as a
    dashed horizontal line when finite. ``percent[i]`` scales panel i by 100.
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
        styles = row_styles(codecs, families or {})
        for ax, metric, pct in zip(axes, metrics, percent):
            scale = 100.0 if pct else 1.0
            for codec in codecs:
                rows = coded[coded["codec"] == codec].sort_values("bpp", kind="stable")
                x = rows["bpp"].to_numpy(dtype=float)
                y = rows[metric].to_numpy(dtype=float)
                ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
                if not ok.any():
                    continue
                x, y = x[ok], y[ok]
                style, anchor = styles[codec], codec in anchors
                ax.plot(x, y * scale, color=style["color"], marker=style["marker"], ls=style["ls"],
                        lw=2.4 if anchor else 1.2, ms=6.5 if anchor else 5.0, zorder=3 if anchor else 2,
                        label=codec + (" (anchor)" if anchor else ""))
                fx, _ = monotone_front(x, y, higher_is_better if metric == metrics[0] else True)
                off = ~np.isin(x, fx)
                ax.plot(x[off], y[off] * scale, style["marker"], mfc="white", mec=style["color"], ms=5.0, ls="none",
                        zorder=4 if anchor else 2)
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
        handles, labels = axes[0].get_legend_handles_labels()
        if handles:  # one legend beside the panels: it never hides a curve
            fig.legend(handles, labels, loc="outside right center", fontsize="small")
        fig.suptitle(title)
        fig.savefig(path, dpi=DPI, metadata={"Software": None})
