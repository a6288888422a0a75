#!/usr/bin/env python3
"""Compare two renders of one board row by row: per-image bytes and per-sample task outputs.

Usage: python scripts/compare_boards.py PUBLISHED_BOARD OTHER_BOARD [--strict]

Prints, for every (codec, rate point) row, whether its images.csv.gz and samples.csv.gz rows are
identical in both boards, and how many differ. CI runs it on the committed quickstart board against
the quickstart it has just regenerated on its own machine: the same pixels (dataset fingerprint),
codec bytes and classifier outputs on every CPU are the promise it checks. Exit status 0 unless
--strict and something differs.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def _rows(path: Path) -> dict[tuple[str, str], pd.DataFrame]:
    if not path.is_file():
        return {}
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return {key: part.drop(columns=["codec", "rate_point"]).reset_index(drop=True)
            for key, part in frame.groupby(["codec", "rate_point"], sort=False)}


def compare(published: Path, other: Path) -> int:
    differing = 0
    for name in ("images.csv.gz", "samples.csv.gz"):
        a, b = _rows(published / name), _rows(other / name)
        for key in list(dict.fromkeys([*a, *b])):
            if key not in a or key not in b:
                print(f"{name} {key[0]} {key[1] or '-'}: only in {'the published' if key in a else 'the other'} board")
                differing += 1
                continue
            left, right = a[key], b[key]
            if left.shape != right.shape or not left.equals(right):
                n = len(left) if left.shape != right.shape else int((left != right).any(axis=1).sum())
                print(f"{name} {key[0]} {key[1] or '-'}: {n} of {len(left)} rows differ")
                differing += 1
    return differing


def main(argv: list[str]) -> int:
    strict = "--strict" in argv
    args = [a for a in argv if a != "--strict"]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    differing = compare(Path(args[0]), Path(args[1]))
    verdict = "identical" if not differing else f"{differing} rows DIFFER"
    print(f"compare_boards {args[0]} vs {args[1]}: per-image and per-sample outputs {verdict}")
    return 1 if strict and differing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
