"""The plugin contracts, shipped with the package: ``taskcodec check codec|dataset|metric NAME`` runs them on
an installed plugin, and the test suite runs the codec contract over every registered codec
(``tests/contract/``). Each contract is a dict of named checks; :func:`run_checks` reports each as
passed or failed with the reason."""
from __future__ import annotations

from .codec_checks import CODEC_CHECKS
from .common import CheckResult, ContractFailure, natural_image, run_checks
from .dataset_checks import DATASET_CHECKS, DatasetUnderTest
from .metric_checks import IMAGE_METRIC_CHECKS

__all__ = ["CODEC_CHECKS", "DATASET_CHECKS", "IMAGE_METRIC_CHECKS", "CheckResult", "ContractFailure",
           "DatasetUnderTest", "natural_image", "run_checks"]
