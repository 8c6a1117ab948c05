"""Strict numerics for every test: one torch thread, deterministic algorithms, CI-quiet bars."""

import os

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")
os.environ.setdefault("CI", "true")  # progress bars off in tests


@pytest.fixture(autouse=True)
def _one_thread_and_strict_numpy():
    torch.set_num_threads(1)
    with np.errstate(all="raise", under="ignore"):
        yield
