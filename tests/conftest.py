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


@pytest.fixture(scope="session")
def trained_pdm():
    """A small RateRNN trained briefly on PerceptualDecisionMaking (> 0.75 accuracy), and the task.

    Shared by tests that need a model that does the task; do not modify it in place."""
    import neurosim
    import paradigms

    task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
    torch.manual_seed(0)
    net = neurosim.models.RateRNN(task.n_inputs, 32, task.n_outputs, dt=task.dt, tau=200.0)
    torch.set_num_threads(1)
    neurosim.train(net, task, n_steps=100, eval_every=100, eval_trials=64, quiet=True)
    return net, task
