"""Entry point ``metrics``: registers the image metrics psnr and ms-ssim (:mod:`.image`), the
classification metrics (:mod:`.classification`) and the verification metrics (:mod:`.verification`)."""
from __future__ import annotations

import taskcodec
from taskcodec_plugins.metrics.classification import Accuracy, BalancedAccuracy, MacroF1
from taskcodec_plugins.metrics.image import MsSsim, Psnr
from taskcodec_plugins.metrics.verification import FixedThresholdVerification, Verification


@taskcodec.hookimpl
def register_metrics(register):
    for cls in (Psnr, MsSsim, Accuracy, BalancedAccuracy, MacroF1, Verification, FixedThresholdVerification):
        register(cls)
