"""Publish a board made of rows of published boards, from those boards' files alone: nothing is recomputed.

    python scripts/derive_board.py leaderboard/ferplus configs/ferplus-small-learned/board.yaml \
        leaderboard/ferplus-small-learned
    taskcodec verify leaderboard/ferplus-small-learned
    # rows of two boards: a published one and a run of only the new rows (same data, task and metrics)
    python scripts/derive_board.py leaderboard/ferplus runs/ferplus-new configs/ferplus/board.yaml leaderboard/ferplus

With several sources, each row comes from the first that holds it; every source must have evaluated
the same images (dataset fingerprint) with the same task model, and give the same uncompressed row.

The new board's config must evaluate the same data with the same task as the source board's, and
every row it names must be in the source board with the same codec identity (the same options,
versions and model digests): then its numbers are those the source board published, and the new
board renders from them (BD-rates, intervals, plots, rate-matched columns, per-sample files). Its
provenance is the source run's, with the new config and a ``derived_from`` record (the source
board's folder, content digest and the git revision it was read at). Anything that differs is
refused with the fact named.
"""
from __future__ import annotations

import sys
from pathlib import Path

from taskcodec.board_derive import derive_board
from taskcodec.errors import PublishError


def derive(source_folders, config_path: Path, out: Path) -> bool:
    folders = [source_folders] if isinstance(source_folders, Path) else list(source_folders)
    return derive_board(folders, config_path, out)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    try:
        changed = derive([Path(a) for a in sys.argv[1:-2]], Path(sys.argv[-2]), Path(sys.argv[-1]))
    except PublishError as exc:
        sys.exit(f"derive_board: {exc}")
    print(f"derive_board: {sys.argv[-1]} {'written' if changed else 'already up to date'}")
