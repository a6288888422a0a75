"""Fixtures of the codec plugins' tests."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Small models on shared, busy cores: one torch thread is 10-100x faster than two spinning ones. (The
    codecs leave the process's thread setting alone; the other-process tests decode with another count.)"""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
