"""FER+ label modes: turning an image's 10 annotator vote counts into a training/evaluation label.

FER+ (Barsoum et al. 2016, "Training Deep Networks for Facial Expression Recognition with Crowd-Sourced
Label Distribution", arXiv 1608.01041; tool: github.com/microsoft/FERPlus, ``src/ferplus.py``) gives
each FER2013 image 10 votes over ``VOTE_COLUMNS``: the 8 emotions, then ``unknown`` and ``NF`` (not a
face). The rules below follow the FER+ tool's ``_process_data``:

1. *Noise removal*: a category with a single vote (count <= 1) is set to 0, in all 10 columns.
2. ``majority`` (the paper's "majority voting", the protocol of the published test accuracies): keep
   an image only when its top count is more than half of all remaining votes (unknown and NF
   included in that total); the label is that category, and the image is excluded when it is
   ``unknown`` or ``NF``. A tie for the top can never be a majority, so ties are excluded too.
   Measured on the FER+ release: Train 25,045 / Valid 3,191 / Test 3,137 images.
3. ``plurality`` (not in the paper; a common, larger alternative): the top category after noise
   removal, if it is unique (a tie for the top excludes the image) and is an emotion.
4. ``soft``: the vote distribution over the 8 emotions after noise removal (unknown/NF votes dropped,
   renormalised), for training with the paper's "probability"/"cross-entropy" targets. The image is
   excluded when no emotion vote remains or when unknown/NF strictly outvotes every emotion. Its hard
   label (used by accuracy metrics) is the top emotion, the first in ``EMOTIONS`` order on a tie.

Every exclusion has a reason, so datasets can publish how many images each rule dropped:
``no-votes`` (nothing left after noise removal), ``unknown``, ``not-a-face``, ``no-majority``, ``tie``.

Pure Python + numpy; no torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

EMOTIONS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
VOTE_COLUMNS = EMOTIONS + ("unknown", "NF")
UNKNOWN, NOT_A_FACE = len(EMOTIONS), len(EMOTIONS) + 1
MODES = ("majority", "plurality", "soft")
REASONS = ("no-votes", "unknown", "not-a-face", "no-majority", "tie")


@dataclass(frozen=True)
class VoteLabel:
    """The outcome of one label mode on one image's votes.

    ``label``: the class index into ``EMOTIONS``, or None when excluded (then ``reason`` says why).
    ``distribution``: for ``soft``, the 8 emotion probabilities (a tuple of floats summing to 1).
    """

    label: int | None
    reason: str | None = None
    distribution: tuple[float, ...] | None = None

    @property
    def kept(self) -> bool:
        return self.label is not None


def clean_votes(votes: Sequence[int | float]) -> np.ndarray:
    """The 10 vote counts with single votes (count <= 1) removed as noise, as float64."""
    v = np.asarray(votes, dtype=np.float64)
    if v.shape != (len(VOTE_COLUMNS),):
        raise ValueError(f"expected {len(VOTE_COLUMNS)} vote counts ({', '.join(VOTE_COLUMNS)}), got {v.shape[0] if v.ndim == 1 else v.shape}")
    if not np.all(np.isfinite(v)) or np.any(v < 0):
        raise ValueError(f"vote counts must be finite and >= 0, got {list(votes)}")
    return np.where(v <= 1.0, 0.0, v)


def _non_emotion(index: int) -> str:
    return "unknown" if index == UNKNOWN else "not-a-face"


def _top_emotion(votes: Sequence[int | float], is_clear: Callable[[np.ndarray, int], bool], unclear: str) -> VoteLabel:
    """The top category after noise removal if ``is_clear(votes, top)`` (else ``unclear``) and it is an emotion."""
    v = clean_votes(votes)
    if v.sum() <= 0:
        return VoteLabel(None, "no-votes")
    top = int(np.argmax(v))
    if not is_clear(v, top):
        return VoteLabel(None, unclear)
    if top >= len(EMOTIONS):
        return VoteLabel(None, _non_emotion(top))
    return VoteLabel(top)


def majority(votes: Sequence[int | float]) -> VoteLabel:
    """The FER+ tool's majority rule (see the module docstring)."""
    return _top_emotion(votes, lambda v, top: v[top] > 0.5 * v.sum(), "no-majority")


def plurality(votes: Sequence[int | float]) -> VoteLabel:
    """The unique top category after noise removal, if it is an emotion."""
    return _top_emotion(votes, lambda v, top: int(np.sum(v == v[top])) == 1, "tie")


def soft(votes: Sequence[int | float]) -> VoteLabel:
    """The emotion vote distribution after noise removal, with its top emotion as the hard label."""
    v = clean_votes(votes)
    if v.sum() <= 0:
        return VoteLabel(None, "no-votes")
    emotions = v[: len(EMOTIONS)]
    if emotions.sum() <= 0 or v[len(EMOTIONS):].max() > emotions.max():
        top = len(EMOTIONS) + int(np.argmax(v[len(EMOTIONS):]))
        return VoteLabel(None, _non_emotion(top))
    dist = emotions / emotions.sum()
    return VoteLabel(int(np.argmax(emotions)), None, tuple(float(p) for p in dist))


RULES = {"majority": majority, "plurality": plurality, "soft": soft}


def label_votes(votes: Sequence[int | float], mode: str) -> VoteLabel:
    """Apply label mode ``mode`` (one of ``MODES``) to one image's 10 vote counts."""
    try:
        rule = RULES[mode]
    except KeyError:
        raise ValueError(f"unknown FER+ label mode {mode!r}; expected one of {list(MODES)}") from None
    return rule(votes)
