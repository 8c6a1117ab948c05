"""Ready-made sweep functions: name them in a sweep config or pass them to ``neurosim.sweep``.

Each takes its parameters as keywords (``seed`` among them, so seeds are a grid axis),
seeds everything it draws from them, and returns results that ``neurosim.sweep`` stores:
a dict of scalars, or an ``xarray.Dataset``.

Examples
--------
A TOML config for ``neurosim sweep``::

    function = "neurosim.sweeps:train_and_evaluate"
    [grid]
    seed = [0, 1, 2]
    n_hidden = [16, 64]
    [fixed]
    steps = 300
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch
import xarray as xr

import paradigms

from ._train import evaluate, seeded_rng, seeded_torch, train
from .models import RateRNN

__all__ = ["learning_curve", "train_and_evaluate"]

#: The held-out trials every cell is scored on (the same for all seeds and sizes).
HELDOUT_SEED = 20_240_601
# Threaded Dask workers share torch's global generator, seeded for the initial weights:
# one cell at a time seeds and builds its network.
_LOCK = threading.Lock()


def _train(
    seed: int,
    n_hidden: int,
    paradigm: str,
    steps: int,
    lr: float,
    batch_size: int,
    tau: float,
    activation: str,
    eval_every: int,
) -> tuple[Any, paradigms.Paradigm, Any]:
    torch.set_num_threads(1)
    with _LOCK, torch.random.fork_rng(devices=[]):
        task = paradigms.make(paradigm)
        torch.manual_seed(seed)  # the initial weights
        net = RateRNN(
            task.n_inputs, n_hidden, task.n_outputs, activation=activation, tau=tau, dt=task.dt
        )
    result = train(
        net,
        task,
        n_steps=steps,
        batch_size=batch_size,
        lr=lr,
        eval_every=eval_every,
        eval_trials=200,
        seed=seed,
        device="cpu",
        quiet=True,
    )
    return net, task, result


def train_and_evaluate(
    seed: int = 0,
    n_hidden: int = 32,
    paradigm: str = "neurogym/PerceptualDecisionMaking-v0",
    steps: int = 300,
    lr: float = 0.01,
    batch_size: int = 32,
    tau: float = 200.0,
    activation: str = "relu",
    eval_trials: int = 500,
) -> dict[str, float]:
    """Train a leaky rate RNN on a paradigm and score it on held-out trials.

    Weights, batches and noise are seeded by ``seed``; the held-out trials are the same
    for every cell (:data:`HELDOUT_SEED`). A few seconds on one CPU thread at the defaults.

    Parameters
    ----------
    seed : int
        Seeds the initial weights and training.
    n_hidden : int
        Hidden units of the :class:`neurosim.models.RateRNN`.
    paradigm : str
        A paradigm id (``paradigms.available()``).
    steps, lr, batch_size : int, float, int
        Adam steps, learning rate and trials per step.
    tau : float
        Time constant in ms.
    activation : str
        ``relu``, ``tanh``, ``softplus``, ``sigmoid``, ``retanh`` or ``identity``.
    eval_trials : int
        Held-out trials scored at the end.

    Returns
    -------
    dict
        ``accuracy`` (the paradigm's performance on the held-out trials), ``final_loss``
        (mean training loss over the last tenth of the steps) and ``steps``.

    Examples
    --------
    >>> out = train_and_evaluate(seed=0, n_hidden=8, steps=3, eval_trials=20)
    >>> sorted(out)
    ['accuracy', 'final_loss', 'steps']
    """
    net, task, result = _train(
        seed, n_hidden, paradigm, steps, lr, batch_size, tau, activation, eval_every=steps
    )
    heldout = task.batch(eval_trials, seeded_rng(HELDOUT_SEED))
    accuracy = evaluate(net, task, heldout, generator=seeded_torch(HELDOUT_SEED, seed))
    tail = max(1, len(result.history) // 10)
    return {
        "accuracy": accuracy,
        "final_loss": float(result.history["loss"].iloc[-tail:].mean()),
        "steps": int(result.steps),
    }


def learning_curve(
    seed: int = 0,
    n_hidden: int = 32,
    paradigm: str = "neurogym/PerceptualDecisionMaking-v0",
    steps: int = 300,
    lr: float = 0.01,
    batch_size: int = 32,
    tau: float = 200.0,
    activation: str = "relu",
    eval_every: int = 25,
) -> xr.Dataset:
    """Train as :func:`train_and_evaluate` and return the learning curve.

    Returns
    -------
    xarray.Dataset
        ``loss`` over ``step`` (every step) and ``performance`` over ``eval_step``
        (every ``eval_every`` steps, on 200 trials held out by the training seed).

    Examples
    --------
    >>> ds = learning_curve(seed=0, n_hidden=8, steps=4, eval_every=2)
    >>> dict(ds.sizes)
    {'step': 4, 'eval_step': 2}
    """
    _, _, result = _train(
        seed, n_hidden, paradigm, steps, lr, batch_size, tau, activation, eval_every
    )
    hist = result.history
    evaluated = hist.dropna(subset=["performance"])
    return xr.Dataset(
        {
            "loss": ("step", hist["loss"].to_numpy(np.float64)),
            "performance": ("eval_step", evaluated["performance"].to_numpy(np.float64)),
        },
        coords={
            "step": hist["step"].to_numpy(np.int64),
            "eval_step": evaluated["step"].to_numpy(np.int64),
        },
    )
