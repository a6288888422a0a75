"""FER+ label modes on hand-made vote rows (order: 8 emotions, unknown, NF)."""
from __future__ import annotations

import pytest

from taskcodec_plugins.datasets.fer import labels as fer_labels
from taskcodec_plugins.datasets.fer.labels import EMOTIONS, label_votes, majority, plurality, soft


def votes(**counts: int) -> list[int]:
    return [counts.get(name, 0) for name in fer_labels.VOTE_COLUMNS]


def idx(name: str) -> int:
    return EMOTIONS.index(name)


def test_columns_and_classes():
    assert fer_labels.VOTE_COLUMNS == ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
                               "unknown", "NF")
    assert len(EMOTIONS) == 8


def test_clear_majority():
    assert majority(votes(happiness=8, neutral=2)) == fer_labels.VoteLabel(idx("happiness"))


def test_single_votes_are_dropped_as_noise():
    # 5 of 10 raw votes is not > half; once the 1-vote categories are dropped, 5 of 7 is.
    row = votes(anger=5, neutral=2, fear=1, sadness=1, disgust=1)
    assert majority(row).label == idx("anger")
    assert fer_labels.clean_votes(row).tolist() == [2, 0, 0, 0, 5, 0, 0, 0, 0, 0]
    # all votes single: nothing is left
    assert majority(votes(neutral=1, happiness=1, surprise=1)) == fer_labels.VoteLabel(None, "no-votes")
    assert plurality(votes(neutral=1, happiness=1)).reason == "no-votes"
    assert soft(votes(neutral=1)).reason == "no-votes"


def test_majority_needs_more_than_half_and_ties_are_no_majority():
    assert majority(votes(neutral=5, happiness=5)) == fer_labels.VoteLabel(None, "no-majority")  # a tie is never > half
    assert majority(votes(neutral=4, happiness=4, sadness=2)).reason == "no-majority"
    assert majority(votes(neutral=5, happiness=3, sadness=2)).reason == "no-majority"  # exactly half
    assert majority(votes(neutral=6, happiness=2, sadness=2)).label == idx("neutral")


def test_unknown_and_not_a_face_count_in_the_total_and_are_excluded():
    # unknown votes make the total larger: 5 of 10 is no majority
    assert majority(votes(surprise=5, unknown=5)).reason == "no-majority"
    assert majority(votes(unknown=7, neutral=3)) == fer_labels.VoteLabel(None, "unknown")
    assert majority(votes(NF=9)) == fer_labels.VoteLabel(None, "not-a-face")
    assert plurality(votes(unknown=4, neutral=3, sadness=3)).reason == "unknown"
    assert plurality(votes(NF=4, neutral=3, sadness=3)).reason == "not-a-face"


def test_plurality():
    assert plurality(votes(neutral=4, happiness=3, sadness=3)).label == idx("neutral")
    assert plurality(votes(neutral=4, happiness=4, sadness=2)) == fer_labels.VoteLabel(None, "tie")
    assert plurality(votes(fear=3, unknown=3, neutral=2)).reason == "tie"
    # more images than majority keeps
    assert majority(votes(neutral=4, happiness=3, sadness=3)).reason == "no-majority"


def test_soft_distribution():
    result = soft(votes(neutral=4, happiness=3, sadness=2, anger=1))
    assert result.label == idx("neutral")
    assert result.distribution == pytest.approx([4 / 9, 3 / 9, 0, 2 / 9, 0, 0, 0, 0])  # anger's single vote dropped
    assert sum(result.distribution) == pytest.approx(1.0)
    # unknown votes are dropped from the distribution, unless they outvote every emotion
    kept = soft(votes(surprise=4, unknown=4, fear=2))
    assert kept.label == idx("surprise") and kept.distribution == pytest.approx([0, 0, 4 / 6, 0, 0, 0, 2 / 6, 0])
    assert soft(votes(unknown=5, surprise=4)).reason == "unknown"
    assert soft(votes(NF=10)).reason == "not-a-face"
    # a tie between emotions: the first in EMOTIONS order is the hard label
    assert soft(votes(sadness=5, happiness=5)).label == idx("happiness")


def test_label_votes_dispatch_and_errors():
    row = votes(neutral=8, happiness=2)
    for mode in fer_labels.MODES:
        assert label_votes(row, mode).label == idx("neutral")
    with pytest.raises(ValueError, match="unknown FER\\+ label mode 'vote'"):
        label_votes(row, "vote")
    with pytest.raises(ValueError, match="10 vote counts"):
        label_votes([1, 2, 3], "majority")
    with pytest.raises(ValueError, match=">= 0"):
        label_votes([-1] + [0] * 9, "majority")


def test_the_tool_rule_on_the_published_counts_example():
    # rows from FER2013Train/label.csv
    assert majority([4, 0, 0, 1, 3, 2, 0, 0, 0, 0]).reason == "no-majority"  # 4 of 9 after dropping the single vote
    assert majority([6, 0, 1, 1, 0, 0, 0, 0, 2, 0]).label == idx("neutral")  # 6 of 8
    assert majority([5, 0, 0, 3, 1, 0, 0, 0, 1, 0]).label == idx("neutral")  # 5 of 8
