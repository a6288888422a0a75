"""Render a leaderboard folder (README.md + rd.png) from results the runner already computed.

Nothing here runs a codec or a task: the input is one row per (codec, rate point) with its mean bpp and
metrics, optionally per-sample scores for bootstrap intervals. BD numbers use :mod:`taskcodec.bd` (pchip on
each curve's monotone front); the returned summary carries them for results.json.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .bd import (
    MIN_FRONT_POINTS,
    MIN_OVERLAP_FRACTION,
    BDResult,
    BootstrapResult,
    bd_quality,
    bd_rate,
    bootstrap_bd_rate,
    interval_from_replicates,
    monotone_front,
    quality_at_rate,
    rate_at_quality,
)
from .hashing import rate_point_key
from .markdown import md_code, md_note, md_text
from .plots import plot_rate_quality

REFERENCE = "none"
IMAGE_METRICS = ("psnr", "ms_ssim")
SAMPLE_ID_COLUMNS = ("image", "sample", "sample_id", "pair", "id")
BOOTSTRAP_N = 200
MATCHED_RATES = (0.25, 0.5, 1.0, 2.0)  # bpp: the rate-matched columns of task boards
BOOTSTRAP_SEED = 0
HEADERS = {"rate_point": "rate point", "bpp": "bpp", "payload_bpp": "payload bpp", "estimated_bpp": "estimated bpp",
           "psnr": "PSNR (dB)", "ms_ssim": "MS-SSIM"}


def render_leaderboard(folder: Path, results: pd.DataFrame, *, title: str, quality_metric: str,
                       higher_is_better: bool = True, anchor: str = "jpeg", extra_anchors: Sequence[str] = (),
                       per_sample: pd.DataFrame | None = None, sample_score_column: str | None = None,
                       quality_replicates: tuple[str, Mapping[tuple[str, str], np.ndarray]] | None = None,
                       notes: Sequence[str] = (), provenance: dict) -> dict:
    """Write ``folder/README.md`` and ``folder/rd.png``; return a JSON-ready summary with the BD numbers.

    ``results``: one row per (codec, rate_point) with ``codec`` (``none`` = uncompressed reference),
    ``rate_point``, ``bpp`` and the ``quality_metric`` column, plus any of ``payload_bpp``, ``psnr``,
    ``ms_ssim`` and task metrics. ``per_sample`` (codec, rate_point, a sample id column such as ``image``,
    ``bpp`` and ``sample_score_column``, by default the ``quality_metric`` column) adds paired-bootstrap
    95% intervals to the BD-rates. A quality that is not a mean of per-sample scores (10-fold verification
    accuracy) brings its own bootstrap instead: ``quality_replicates`` = (how it resampled, {(codec,
    :func:`rate_point_key`): the quality of each of :data:`BOOTSTRAP_N` paired resamples}); the rates stay
    the rows' (see :meth:`taskcodec.TaskMetric.bootstrap_replicates`).
    """
    missing = [c for c in ("codec", "rate_point", "bpp", quality_metric) if c not in results.columns]
    if missing:
        raise ValueError(f"results lack column(s) {missing}; has {list(results.columns)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    results = results.reset_index(drop=True)
    codecs = _codec_order(results, anchor, extra_anchors)
    coded = [c for c in codecs if c != REFERENCE]
    percent = is_fraction_column(results, quality_metric)
    auto_notes: list[str] = []
    per_sample, score_col = _bootstrap_input(per_sample, sample_score_column, quality_metric, auto_notes)
    if per_sample is not None:
        bootstrap = _sample_bootstrap(per_sample, score_col, higher_is_better)
        method = f"paired percentile bootstrap over samples ({BOOTSTRAP_N} resamples, seed {BOOTSTRAP_SEED})"
    elif quality_replicates is not None:
        method, replicates = quality_replicates
        bootstrap = _replicate_bootstrap(results, replicates, quality_metric, higher_is_better)
    else:
        bootstrap, method = None, ""
    bd_rows = _bd_rows(results, bootstrap, coded, [anchor, *extra_anchors], quality_metric,
                       higher_is_better, auto_notes)
    fronts = {c: int(monotone_front(*_curve(results, c, quality_metric), higher_is_better)[0].size)
              for c in coded}
    drop = _one_point_drop(results, coded, quality_metric, higher_is_better, percent)
    matched = _rate_matched(results, coded, quality_metric, higher_is_better)
    families = {row: identity.get("name") for row, identity in (provenance.get("codecs") or {}).items()
                if isinstance(identity, dict) and identity.get("name")}
    _plot(folder / "rd.png", results, title, quality_metric, coded, higher_is_better, families,
          [anchor, *extra_anchors])
    readme = _readme(results, title=title, qm=quality_metric, hib=higher_is_better, percent=percent,
                     codecs=codecs, bd_rows=bd_rows, fronts=fronts, drop=drop, matched=matched, bootstrap=method,
                     notes=[*notes, *auto_notes], provenance=provenance)
    (folder / "README.md").write_text(readme, encoding="utf-8")
    return {
        "title": title, "quality_metric": quality_metric, "higher_is_better": higher_is_better,
        "anchor": anchor, "extra_anchors": list(extra_anchors), "method": "pchip",
        "bd": bd_rows, "front_points": fronts, "one_point_drop": drop, "rate_matched": matched, "notes": auto_notes,
        "files": ["README.md", "rd.png"],
    }


# ---------------------------------------------------------------------------------------- computation
def _bootstrap_input(per_sample, score_col, quality_metric, auto_notes) -> tuple[pd.DataFrame | None, str | None]:
    """The per-sample data and its score column, or ``(None, ...)`` with a note when it has no score column."""
    if per_sample is not None and score_col is None and quality_metric in per_sample.columns:
        score_col = quality_metric
    if per_sample is not None and (score_col is None or score_col not in per_sample.columns):
        auto_notes.append(f"per-sample data has no score column {score_col or quality_metric!r}: no bootstrap intervals")
        per_sample = None
    return per_sample, score_col


def _bd_rows(results, bootstrap, coded, anchors, qm, hib, auto_notes) -> list[dict[str, Any]]:
    """BD numbers of every codec against each anchor; a note for each codec with one point and each anchor missing."""
    bd_rows: list[dict[str, Any]] = []
    single = [c for c in coded if int((results["codec"] == c).sum()) < 2]  # a point, not a curve: no BD-rate
    if single:
        auto_notes.append("one rate point, so no BD-rate (compare bpp and quality directly): "
                          + ", ".join(md_code(c) for c in single))
    for a in anchors:
        if a not in coded:
            auto_notes.append(f"anchor {md_code(a)} is not among the results ({', '.join(map(md_code, coded)) or 'no codecs'}): "
                              f"no BD-rates against it")
            continue
        for c in coded:
            if c != a and c not in single:
                bd_rows.append(_bd_entry(results, bootstrap, c, a, qm, hib))
    return bd_rows


def _plot(path: Path, results, title, qm, coded, hib, families, anchors) -> None:
    """rd.png: the quality metric's panel, and a second one for an image metric the results have."""
    metrics = [qm]
    second = next((m for m in IMAGE_METRICS if m != qm and m in results.columns and results[m].notna().any()), None)
    if second:
        metrics.append(second)
    plot_rate_quality(path, results, title=title, metrics=metrics, codecs=coded,
                      percent=[is_fraction_column(results, m) and m not in IMAGE_METRICS for m in metrics],
                      higher_is_better=hib, families=families, anchors=anchors)


def _codec_order(results: pd.DataFrame, anchor: str, extra: Sequence[str]) -> list[str]:
    seen = list(dict.fromkeys(str(c) for c in results["codec"]))
    first = [c for c in (REFERENCE, anchor, *extra) if c in seen]
    return list(dict.fromkeys(first + seen))


def _curve(results: pd.DataFrame, codec: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    rows = results[results["codec"] == codec]
    return rows["bpp"].to_numpy(dtype=float), rows[metric].to_numpy(dtype=float)


def is_fraction_column(results: pd.DataFrame, col: str) -> bool:
    """A task metric reported as a fraction in [0, 1] (shown as %)."""
    if col in IMAGE_METRICS or col == "rate_point" or "bpp" in col or not pd.api.types.is_numeric_dtype(results[col]):
        return False
    if pd.api.types.is_integer_dtype(results[col]):  # a count (e.g. detection_failures), not a fraction
        return False
    v = results[col].to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    return v.size > 0 and bool(((v >= 0) & (v <= 1)).all())


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _bd_entry(results, bootstrap, codec, anchor, qm, hib) -> dict[str, Any]:
    """One BD-rate row; ``bootstrap(codec, anchor)`` gives its interval (None: cannot), or is None (no data)."""
    ra, qa = _curve(results, anchor, qm)
    rt, qt = _curve(results, codec, qm)
    rate: BDResult = bd_rate(ra, qa, rt, qt, "pchip", hib)
    qual: BDResult = bd_quality(ra, qa, rt, qt, "pchip", hib)
    boot = bootstrap(codec, anchor) if bootstrap is not None else None
    return {
        "codec": codec, "anchor": anchor, "bd_rate": _num(rate.value),
        "bd_rate_ci95": list(boot.interval) if boot is not None and boot.interval else None,
        "bootstrap_note": boot.note if boot is not None else
        ("too few complete per-sample rows for a paired bootstrap" if bootstrap is not None else ""),
        "bd_quality": _num(qual.value), "overlap_fraction": rate.overlap_fraction,
        "reliable": rate.reliable, "note": rate.note,
        "bd_quality_overlap_fraction": qual.overlap_fraction, "bd_quality_reliable": qual.reliable,
        "bd_quality_note": qual.note,
        "codec_front_points": rate.test_points, "anchor_front_points": rate.anchor_points,
    }


def _sample_matrices(per_sample: pd.DataFrame, codec: str, score_col: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(points x samples) bpp and score tables of one codec, columns = sample ids."""
    rows = per_sample[per_sample["codec"] == codec]
    id_col = next((c for c in SAMPLE_ID_COLUMNS if c in rows.columns), None)
    ids = rows[id_col] if id_col else rows.groupby("rate_point").cumcount()
    grouped = rows.assign(_id=ids.to_numpy()).groupby(["rate_point", "_id"])[["bpp", score_col]].mean()
    return grouped["bpp"].unstack("_id"), grouped[score_col].unstack("_id")


def _sample_bootstrap(per_sample, score_col, hib) -> Callable[[str, str], BootstrapResult | None]:
    """Intervals from per-sample scores: (codec, anchor) -> the paired bootstrap of the samples both have."""
    def interval(codec: str, anchor: str) -> BootstrapResult | None:
        ar, asc = _sample_matrices(per_sample, anchor, score_col)
        tr, tsc = _sample_matrices(per_sample, codec, score_col)
        common = ar.columns.intersection(tr.columns)
        complete = [s for s in common if not (ar[s].isna().any() or asc[s].isna().any()
                                              or tr[s].isna().any() or tsc[s].isna().any())]
        if len(complete) < 2 or ar.shape[0] < 2 or tr.shape[0] < 2:
            return None
        return bootstrap_bd_rate(ar[complete].to_numpy(float), asc[complete].to_numpy(float),
                                 tr[complete].to_numpy(float), tsc[complete].to_numpy(float),
                                 n_boot=BOOTSTRAP_N, seed=BOOTSTRAP_SEED, higher_is_better=hib)
    return interval


def _replicate_bootstrap(results, replicates, qm, hib) -> Callable[[str, str], BootstrapResult | None]:
    """Intervals from a metric's own replicates of each row's quality (rates held at the rows' bpp)."""
    def matrices(codec: str) -> tuple[np.ndarray, np.ndarray] | None:
        rows = results[results["codec"] == codec]
        reps = [replicates.get((codec, rate_point_key(p))) for p in rows["rate_point"]]
        if any(r is None for r in reps):
            return None
        quality = np.stack([np.asarray(r, dtype=float) for r in reps], axis=1)  # (replicates, points)
        rates = np.broadcast_to(rows["bpp"].to_numpy(dtype=float), quality.shape)
        return rates, quality

    def interval(codec: str, anchor: str) -> BootstrapResult | None:
        a, t = matrices(anchor), matrices(codec)
        if a is None or t is None:
            return None
        estimate = bd_rate(*_curve(results, anchor, qm), *_curve(results, codec, qm), "pchip", hib).value
        return interval_from_replicates(*a, *t, estimate=estimate, seed=BOOTSTRAP_SEED, higher_is_better=hib)
    return interval


def _rate_matched(results, coded, qm, hib) -> dict | None:
    """Each codec's task quality at the fixed rates :data:`MATCHED_RATES` (bpp), read off its monotone front
    (linear in log-rate; None outside the rates it covers). Task boards only."""
    if qm in IMAGE_METRICS:
        return None
    return {"bpp": list(MATCHED_RATES), "quality": {c: [quality_at_rate(*_curve(results, c, qm), r, hib)
                                                        for r in MATCHED_RATES] for c in coded}}


def _one_point_drop(results, coded, qm, hib, percent) -> dict | None:
    """bpp at which each codec first reaches the reference quality minus one point (0.01 for fractions)."""
    if qm in IMAGE_METRICS:
        return None
    ref = results.loc[results["codec"] == REFERENCE, qm].to_numpy(dtype=float)
    ref = ref[np.isfinite(ref)]
    if not ref.size:
        return None
    step = 0.01 if percent else 1.0
    target = float(ref.mean()) - (step if hib else -step)
    bpp = {c: rate_at_quality(*_curve(results, c, qm), target, hib) for c in coded}
    return {"reference": float(ref.mean()), "target": target, "bpp": bpp}


# ---------------------------------------------------------------------------------------- formatting
def _fmt(col: str, v: Any, percent: bool) -> str:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else md_text(v)
    v = float(v)
    if math.isnan(v):
        return "-"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if col == "rate_point":
        return f"{v:g}"
    if "bpp" in col:
        return f"{v:.3f}"
    if percent:
        return f"{100 * v:.2f}"
    return {"psnr": f"{v:.2f}", "ms_ssim": f"{v:.4f}"}.get(col, f"{v:.4g}")


def _table(df: pd.DataFrame, left: Sequence[str] = ("codec", "rate point", "vs", "note")) -> str:
    align = ["left" if c in left else "right" for c in df.columns]
    return df.to_markdown(index=False, disable_numparse=True, colalign=align)


def _leaderboard_table(results: pd.DataFrame, codecs: list[str], qm: str) -> str:
    first = ["codec", "rate_point", "bpp", "payload_bpp", "estimated_bpp", qm]
    cols = [c for c in first if c in results.columns]
    cols += [c for c in results.columns if c not in cols and c not in IMAGE_METRICS]
    cols += [c for c in IMAGE_METRICS if c in results.columns and c not in cols]
    order = {c: i for i, c in enumerate(codecs)}
    rows = results.assign(_o=results["codec"].astype(str).map(order)).sort_values(["_o", "bpp"], kind="stable")
    pct = {c: is_fraction_column(results, c) for c in cols}
    out = pd.DataFrame({HEADERS.get(c, c) + (" (%)" if pct[c] else ""): [_fmt(c, v, pct[c]) for v in rows[c]]
                        for c in cols})
    return _table(out)


def _pct(v: float | None, signed: bool = True) -> str:
    return "n/a" if v is None else (f"{100 * v:+.1f}%" if signed else f"{100 * v:.1f}%")


def _bd_table(bd_rows: list[dict], qm: str, percent: bool, bootstrap: bool) -> str:
    qhead = f"BD-{qm}" + (" (pp)" if percent else "")
    out = []
    for r in bd_rows:
        q = r["bd_quality"]
        row = {"codec": md_text(r["codec"]), "vs": md_text(r["anchor"]), "BD-rate": _pct(r["bd_rate"])}
        if bootstrap:
            ci = r["bd_rate_ci95"]
            row["95% CI"] = "n/a" if ci is None else f"[{_pct(ci[0])}, {_pct(ci[1])}]"
        row[qhead] = "n/a" if q is None else (f"{100 * q:+.2f}" if percent else f"{q:+.4g}")
        row["overlap"] = _pct(r["overlap_fraction"], signed=False)
        row["front pts (codec/anchor)"] = f"{r['codec_front_points']}/{r['anchor_front_points']}"
        parts = [r["note"]] if r["note"] else []
        if r["bd_quality_note"] and r["bd_quality_note"] != r["note"]:
            parts.append(f"BD-{qm}: {r['bd_quality_note']}")
        if bootstrap and r["bootstrap_note"]:
            parts.append(r["bootstrap_note"])
        row["note"] = md_text("; ".join(parts) or "ok")
        out.append(row)
    return _table(pd.DataFrame(out))


def _codec_table(results, codecs, fronts, drop, matched, qm, percent) -> str:
    rows = []
    for c in codecs:
        if c == REFERENCE:
            continue
        row = {"codec": md_text(c), "points": int((results["codec"] == c).sum()), "front points": fronts[c]}
        if drop is not None:
            b = drop["bpp"][c]
            row[f"bpp at {_fmt(qm, drop['target'], percent)}{'%' if percent else ''}"] = \
                "not reached" if b is None else f"{b:.3f}"
        if matched is not None:
            for rate, q in zip(matched["bpp"], matched["quality"][c]):
                row[f"{qm} at {rate:g} bpp"] = "-" if q is None else _fmt(qm, q, percent)
        rows.append(row)
    return _table(pd.DataFrame(rows))


def _model_cards(cards: Sequence[dict]) -> list[str]:
    """The model cards as a table: what each model was trained on, its relation to the evaluated set, its cost."""
    def trained(card):
        data = card.get("trained_on")
        if not data:
            return "unknown"
        return md_text(f"{data.get('dataset')} {data.get('split')}, {data.get('images')} images, "
                       f"fingerprint {str(data.get('fingerprint'))[:12]}")

    def cost(card):
        facts = {k: v for k, v in (card.get("cost") or {}).items() if v is not None}
        return md_text(", ".join(f"{k} {v}" for k, v in facts.items())) or "unknown"

    table = pd.DataFrame([{"row": md_text(c["row"]), "model": md_text(c["kind"] + (f" ({c['mode']})" if c.get("mode") else "")),
                           "weights": md_code(c.get("weights") or "-", in_table=True), "trained on": trained(c),
                           "overlap with the evaluated set": md_text(c.get("overlap")), "training cost": cost(c)}
                          for c in cards])
    return [table.to_markdown(index=False, disable_numparse=True)]


def _provenance(provenance: dict) -> list[str]:
    provenance = {k: v for k, v in provenance.items() if k != "model_cards"}  # shown as their own table
    scalars = {k: v for k, v in provenance.items() if not isinstance(v, (dict, list, tuple))}
    nested = {k: v for k, v in provenance.items() if k not in scalars}
    lines = [f"- {md_text(k)}: {md_code(v)}" for k, v in scalars.items() if k != "command"]
    if nested:
        dump = json.dumps(nested, indent=2, default=str)
        fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", dump)), default=0))
        lines += ["", fence + "json", dump, fence]
    command = provenance.get("command")
    lines += ["", f"Regenerate with: {md_code(command)}" if command else "Regenerate: no command recorded."]
    return lines


def _no_bd_reason(results, codecs: Sequence[str]) -> str:
    """Why a board has no BD table, in words a reader of the board understands."""
    curves = [c for c in codecs if c != REFERENCE and int((results["codec"] == c).sum()) >= 2]
    if not [c for c in codecs if c != REFERENCE]:
        why = "the board has no codec rows, only the uncompressed reference"
    elif len(curves) < 2:
        why = (f"a BD-rate compares the rate-quality curves of two codecs, and this board has "
               f"{'one codec curve' if curves else 'no codec curve'} (a row with at least two rate points)")
    else:
        why = "no anchor of the config is among the rows"
    return f"No BD-rates: {why}; see the notes."


def _readme(results, *, title, qm, hib, percent, codecs, bd_rows, fronts, drop, matched, bootstrap, notes,
            provenance) -> str:
    unit = " (shown in %, BD in percentage points)" if percent else ""
    direction = "higher is better" if hib else "lower is better"
    lines = [
        f"# {md_text(title)}", "",
        "Rate is 8 x the bytes each codec actually wrote for an image (headers and side information "
        "included) divided by the pixel count of the original image, averaged over images (mean of "
        "per-image bpp); `payload bpp` leaves out a separable header where the codec has one."
        + (" `estimated bpp` is the rate the codec's own entropy model predicts (e.g. from a learned codec's "
           "likelihoods), shown for comparison only; it never replaces the bytes." if "estimated_bpp" in results.columns
           else "")
        + f" Quality is `{qm}`{unit}, {direction}; `{REFERENCE}` is the uncompressed reference.", "",
        "## Leaderboard", "", _leaderboard_table(results, codecs, qm), "",
    ]
    lines += [
        "## BD-rate", "",
        f"Bjontegaard delta (VCEG-M33) with piecewise cubic (pchip) interpolation as in JVET practice, "
        f"computed on each curve's monotone (upper Pareto) front so saturating, non-monotone task curves are "
        f"usable: BD-rate is the average change in bits at equal `{qm}` over the range both curves cover "
        f"(negative = fewer bits than the anchor); BD-{qm} is the average change in `{qm}` at equal rate. "
        f"Values are flagged when the quality ranges overlap by less than {MIN_OVERLAP_FRACTION:.0%} of the "
        f"narrower range or a front has fewer than {MIN_FRONT_POINTS} points."
        + (f" 95% intervals: {bootstrap}." if bootstrap else ""), "",
    ]
    lines += [_bd_table(bd_rows, qm, percent, bootstrap), ""] if bd_rows else [_no_bd_reason(results, codecs), ""]
    lines += ["## Curves", ""]
    if drop is not None:
        ref = _fmt(qm, drop["reference"], percent) + ("%" if percent else "")
        lines += [f"`bpp at ...`: the lowest rate at which the codec's front reaches the uncompressed reference "
                  f"({ref}) minus one point (interpolated linearly in log-rate between front points)."
                  + (f" `{qm} at R bpp`: the front's {qm} at that rate, interpolated the same way ('-': outside the "
                     f"rates the codec's front covers)." if matched is not None else ""), ""]
    lines += [_codec_table(results, codecs, fronts, drop, matched, qm, percent), "",
              "![rate-quality](rd.png)", "",
              "Hollow markers: points off the codec's monotone front (not used for BD).", ""]
    if notes:
        lines += ["## Notes", "", *[f"- {md_note(n)}" for n in notes], ""]
    if provenance.get("model_cards"):
        lines += ["## Model cards", "", *_model_cards(provenance["model_cards"]), ""]
    lines += ["## Provenance", "", *_provenance(provenance), ""]
    return "\n".join(lines)


__all__ = ["render_leaderboard"]
