"""Entry point ``expression-cnn``: registers ``expression-cnn``, the FER classifier task (:mod:`.task`;
the network in :mod:`.model`, its training in :mod:`.training`, its differentiable view for codec
training in :mod:`.differentiable`)."""
from __future__ import annotations

import taskcodec
from taskcodec_plugins.tasks.expression_cnn.task import ExpressionCNN


@taskcodec.hookimpl
def register_tasks(register):
    register(ExpressionCNN)
