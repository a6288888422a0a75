"""Catalogue of bad option values for the synthetic-faces dataset: each one is refused with a
DatasetError that names the option and the value given (nothing is generated or stored)."""
from __future__ import annotations

import math

import pytest

from taskcodec import DatasetError
from taskcodec_plugins.datasets.synthetic_faces.dataset import SyntheticFaces

CASES = {
    "noise_nan": ({"noise": math.nan}, "'noise'", "nan"),
    "noise_inf": ({"noise": math.inf}, "'noise'", "inf"),
    "noise_negative_inf": ({"noise": -math.inf}, "'noise'", "-inf"),
    "noise_as_string": ({"noise": "3"}, "'noise'", "'3'"),
    "noise_as_bool": ({"noise": True}, "'noise'", "True"),
    "noise_too_large": ({"noise": 65.0}, "'noise'", "65.0"),
    "count_zero": ({"count": 0}, "'count'", "0"),
    "count_negative": ({"count": -5}, "'count'", "-5"),
    "count_zero_for_this_split": ({"count": {"test": 0}}, "'count'", "{'test': 0}"),
    "count_float_in_mapping": ({"count": {"test": 10.0}}, "'count'", "10.0"),
    "count_as_bool": ({"count": True}, "'count'", "True"),
    "size_as_floats": ({"size": [64.0, 64.0]}, "'size'", "[64.0, 64.0]"),
    "size_as_one_float": ({"size": 64.0}, "'size'", "64.0"),
    "size_too_large": ({"size": [64, 600]}, "'size'", "[64, 600]"),
    "size_as_bool": ({"size": True}, "'size'", "True"),
    "seed_as_float": ({"seed": 1.5}, "'seed'", "1.5"),
    "seed_as_bool": ({"seed": True}, "'seed'", "True"),
    "identities_as_float": ({"identities": 2.0}, "'identities'", "2.0"),
    "identities_too_many": ({"identities": 100_001}, "'identities'", "100001"),
    "classes_empty": ({"classes": []}, "'classes'", "[]"),
    "classes_as_mapping": ({"classes": {"happy": 1}}, "'classes'", "{'happy': 1}"),
    "color_upper_case": ({"color": "RGB"}, "'color'", "'RGB'"),
    "unknown_option_name": ({"colour": "rgb"}, "'colour'", "unknown option"),
    "two_unknown_option_names": ({"colour": "rgb", "sigma": 2}, "'sigma'", "unknown option"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_option_is_refused_and_named(case):
    options, culprit, shown = CASES[case]
    with pytest.raises(DatasetError) as caught:
        SyntheticFaces(None, "test", **options)
    message = str(caught.value)
    assert "synthetic-faces" in message and culprit in message and shown in message


def test_unknown_split_is_named():
    with pytest.raises(DatasetError, match=r"'split' = 'dev'.*\['train', 'val', 'test'\]"):
        SyntheticFaces(None, "dev")
