"""Robustness curves: task performance against perturbation strength."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from neurosim import Perturbation, simulate_conditions
from neurosim._train import quiet_mode, seeded_rng
from neurosim.models import RecurrentModel
from paradigms import Paradigm


def compute_robustness(
    model: RecurrentModel,
    paradigm: Paradigm,
    perturbations: Sequence[Perturbation],
    strengths: Sequence[float],
    seeds: Sequence[int] = (0,),
    *,
    n_trials: int = 64,
    noise: bool = True,
    batch_size: int | None = None,
    device: str = "auto",
    quiet: bool = False,
) -> xr.Dataset:
    """Performance of ``model`` on ``paradigm`` as each perturbation grows in strength.

    For every seed, all ``len(perturbations) × len(strengths)`` conditions plus the
    unperturbed run go through ONE batched simulation on the same trials (drawn
    with that seed) and the same recurrent noise; each condition is scored with
    ``paradigm.performance`` (fraction of response steps correct, or −MSE) and
    averaged over trials. Seeds resample trials, noise and lesioned subsets.

    Parameters
    ----------
    model : RecurrentModel
    paradigm : Paradigm
    perturbations : sequence of Perturbation
        Templates; their ``strength`` is replaced by each of ``strengths``. Labels
        must be distinct (they name the ``perturbation`` coordinate).
    strengths : sequence of float
    seeds : sequence of int, default (0,)
    n_trials : int, default 64
        Trials per seed.
    noise : bool, default True
        Include the model's recurrent noise.
    batch_size : int, optional
        Trials per chunk (bounds memory).
    device : str, default "auto"
    quiet : bool

    Returns
    -------
    xarray.Dataset
        ``performance (seed, perturbation, strength)``; its ``mean`` and ``sem``
        (standard error over seeds; NaN with one seed) over ``(perturbation,
        strength)``; ``unperturbed (seed)``; attrs ``paradigm``, ``model``,
        ``perturbations`` (JSON), ``n_trials`` and ``metric``.

    Examples
    --------
    >>> import paradigms, neurosim, analyses
    >>> task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
    >>> net = neurosim.models.RateRNN(task.n_inputs, 16, task.n_outputs, dt=task.dt)
    >>> rob = analyses.compute_robustness(
    ...     net, task, [neurosim.Perturbation("state", "lesion")], [0.0, 1.0], n_trials=8)
    >>> rob.performance.dims, rob.sizes["strength"]
    (('seed', 'perturbation', 'strength'), 2)
    """
    perturbations = list(perturbations)
    if not perturbations or not all(isinstance(p, Perturbation) for p in perturbations):
        raise TypeError("perturbations must be a non-empty sequence of neurosim.Perturbation")
    names = [p.name for p in perturbations]
    if len(set(names)) != len(names):
        raise ValueError(f"perturbation names must be distinct (set label=...), got {names}")
    strengths = [float(s) for s in strengths]
    seeds = [int(s) for s in seeds]
    if not strengths or not seeds:
        raise ValueError(f"strengths and seeds must be non-empty, got {strengths} and {seeds}")
    if int(n_trials) < 1:
        raise ValueError(f"n_trials must be a positive integer, got {n_trials!r}")
    conditions = [None] + [
        dataclasses.replace(p, strength=s) for p in perturbations for s in strengths
    ]
    perf = np.empty((len(seeds), len(perturbations), len(strengths)))
    base = np.empty(len(seeds))
    for i, seed in enumerate(tqdm(seeds, desc="robustness", disable=quiet_mode(quiet))):
        batch = paradigm.batch(int(n_trials), seeded_rng(seed, 10))
        out = simulate_conditions(
            model, batch, conditions, seed=seed, noise=noise, batch_size=batch_size,
            device=device, keep_state=False, quiet=True,
        )["output"]  # fmt: skip
        scores = np.array([paradigm.performance(o, batch).mean() for o in out])
        base[i] = scores[0]
        perf[i] = scores[1:].reshape(len(perturbations), len(strengths))
    n = len(seeds)
    sem = perf.std(0, ddof=1) / np.sqrt(n) if n > 1 else np.full(perf.shape[1:], np.nan)
    metric = "accuracy" if paradigm.target_kind == "class" else "negative_mse"
    return xr.Dataset(
        {
            "performance": (("seed", "perturbation", "strength"), perf),
            "mean": (("perturbation", "strength"), perf.mean(0)),
            "sem": (("perturbation", "strength"), sem),
            "unperturbed": ("seed", base),
        },
        coords={
            "seed": seeds,
            "perturbation": names,
            "strength": strengths,
            "operation": ("perturbation", [p.operation for p in perturbations]),
            "perturbation_target": ("perturbation", [p.target for p in perturbations]),
        },
        attrs={
            "paradigm": paradigm.id,
            "model": json.dumps(model.config(), sort_keys=True),
            "perturbations": json.dumps([p.to_dict() for p in perturbations], sort_keys=True),
            "n_trials": int(n_trials),
            "noise": json.dumps(bool(noise)),
            "metric": metric,
        },
    )
