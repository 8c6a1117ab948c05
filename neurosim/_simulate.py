"""Run a model through a paradigm and return labelled trajectories."""

from __future__ import annotations

import datetime as _dt
import functools
import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from paradigms import Paradigm, TrialBatch

from ._perturbation import as_conditions, condition_name
from ._perturbed_run import simulate_conditions
from ._train import seeded_rng
from ._trajectories import build_trajectories
from .models import RecurrentModel

_VERSIONED = ("neurosim", "torch", "numpy", "xarray", "neurogym")


@functools.cache
def _versions() -> tuple[tuple[str, str], ...]:
    out = []
    for name in _VERSIONED:
        try:
            out.append((name, version(name)))
        except PackageNotFoundError:
            out.append((name, "not installed"))
    return tuple(out)


def package_versions() -> dict[str, str]:
    """Versions of the packages that decide a run's numbers (for provenance)."""
    return dict(_versions())


def simulate(
    model: RecurrentModel,
    paradigm: Paradigm,
    n_trials: int | None = None,
    seed: int = 0,
    perturbation: Any = None,
    *,
    batch: TrialBatch | None = None,
    noise: bool = True,
    batch_size: int | None = None,
    device: str = "auto",
    quiet: bool = False,
) -> xr.Dataset:
    """Simulate ``n_trials`` trials of ``paradigm`` through ``model``.

    Parameters
    ----------
    model : RecurrentModel
        Any model following the contract.
    paradigm : Paradigm
        An open-loop paradigm; it draws the trials with ``seed`` unless ``batch`` is given.
    n_trials : int
        Number of trials (ignored when ``batch`` is given).
    seed : int
        Seeds the trials and the model's recurrent noise: same seed, same numbers.
    perturbation : Perturbation or list of Perturbation, optional
        One spec (applied to the run; recorded in ``attrs["perturbation"]``) or a list
        of them (``None`` entries = unperturbed), run as ONE batched simulation on the
        same trials and noise; the result then gains a leading ``condition`` dim on
        ``state`` and ``output`` (and ``input`` when inputs are perturbed), with the
        condition's ``perturbation`` name, ``perturbation_target``, ``operation`` and ``strength``
        as coordinates. See :class:`neurosim.Perturbation`.
    batch : TrialBatch, optional
        Simulate this batch instead of drawing one.
    noise : bool, default True
        Include the model's recurrent noise (seeded).
    batch_size : int, optional
        Run the model over this many trials at a time (bounds memory); all at once by default.
    device : str, default "auto"
    quiet : bool
        No progress bar (always quiet on CI).

    Returns
    -------
    xarray.Dataset
        Dims ``trial, time, unit, input, output``; variables ``state``, ``input``,
        ``output``, ``target``, ``mask``, ``valid``; every trial variable as a
        ``trial`` coordinate; provenance in ``attrs`` (JSON strings).

    Examples
    --------
    >>> import paradigms, neurosim
    >>> task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
    >>> net = neurosim.models.RateRNN(task.n_inputs, 16, task.n_outputs, dt=task.dt)
    >>> ds = neurosim.simulate(net, task, n_trials=4, seed=0)
    >>> ds.sizes["trial"], float(ds.time[1] - ds.time[0])
    (4, 100.0)
    """
    if batch is None:
        if n_trials is None or int(n_trials) < 1:
            raise ValueError(f"n_trials must be a positive integer, got {n_trials!r}")
        batch = paradigm.batch(int(n_trials), seeded_rng(seed, 10))
    if batch.inputs.shape[-1] != model.n_inputs:
        raise ValueError(
            f"paradigm {paradigm.id!r} gives {batch.inputs.shape[-1]} inputs; the model takes {model.n_inputs}"
        )
    attrs = {
        "paradigm": paradigm.id,
        "paradigm_kwargs": json.dumps(paradigm.kwargs, sort_keys=True, default=str),
        "model": json.dumps(model.config(), sort_keys=True),
        "seed": int(seed),
        "noise": json.dumps(bool(noise)),
        "versions": json.dumps(package_versions(), sort_keys=True),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    return _simulate_conditions(
        model, batch, perturbation, attrs, seed=seed, noise=noise, batch_size=batch_size,
        device=device, quiet=quiet,
    )  # fmt: skip


def _trajectories(
    model: RecurrentModel,
    batch: TrialBatch,
    state: np.ndarray,
    inputs: np.ndarray,
    output: np.ndarray,
    attrs: dict[str, Any],
) -> xr.Dataset:
    return build_trajectories(
        state=state,
        inputs=inputs,
        outputs=output,
        targets=batch.targets,
        mask=batch.mask,
        valid=batch.valid,
        dt=batch.dt,
        trials=batch.trials,
        unit_coords=model.unit_coords(),
        attrs=attrs,
        covariates=batch.covariates,
    )


_RENAMED_DIMS = {
    "module": "rim"
}  # "module" already labels units; a model's per-module dim is "rim"


def _model_variables(
    model: RecurrentModel, inputs: Any, states: Any, batched: bool
) -> dict[str, xr.Variable]:
    """Extra per-step variables a model derives from its run (e.g. attention, active modules).

    A model that defines ``trajectory_variables(inputs [B,T,I], states [B,T,N])`` returning
    ``{name: (dims, array)}`` gets them added to the dataset (dim ``module`` is named ``rim``
    there, with the model's ``module_names`` as its coordinate; ``slot`` takes ``slot_names``).
    """
    fn = getattr(model, "trajectory_variables", None)
    if fn is None:
        return {}
    per_run = [fn(np.asarray(x), np.asarray(h)) for x, h in zip(inputs, states, strict=True)]
    out: dict[str, xr.Variable] = {}
    for name, (dims, _) in per_run[0].items():
        dims = tuple(_RENAMED_DIMS.get(d, d) for d in dims)
        data = np.stack([run[name][1] for run in per_run]) if batched else per_run[0][name][1]
        out[name] = xr.Variable((("condition",) if batched else ()) + dims, data)
    coords = {
        "rim": getattr(model, "module_names", None),
        "slot": getattr(model, "slot_names", None),
    }
    return {**out, **{k: xr.Variable((k,), list(v)) for k, v in coords.items()
                      if v is not None and any(k in var.dims for var in out.values())}}  # fmt: skip


def batch_from_trajectories(ds: xr.Dataset) -> TrialBatch:
    """The :class:`~paradigms.TrialBatch` a trajectory Dataset was simulated from.

    Lets a paradigm score saved trajectories:
    ``paradigm.performance(ds.output.values, batch_from_trajectories(ds))``.
    Trial variables come back from the ``trial`` coordinates.
    """
    names = [c for c in ds["trial"].coords if c != "trial" and ds[c].dims == ("trial",)]
    trials = pd.DataFrame(
        {c: ds[c].values for c in names}, index=pd.RangeIndex(ds.sizes["trial"], name="trial")
    )
    covariates = {
        str(k): v.values for k, v in ds.data_vars.items() if v.attrs.get("covariate") == 1
    }
    return TrialBatch(
        covariates=covariates,
        inputs=ds["input"].values,
        targets=ds["target"].values,
        mask=ds["mask"].values,
        trials=trials,
        dt=float(ds.attrs["dt"]),
        valid=ds["valid"].values,
        target_kind=ds.attrs["target_kind"],
    )


def _simulate_conditions(
    model: RecurrentModel,
    batch: TrialBatch,
    perturbation: Any,
    attrs: dict[str, Any],
    **run: Any,
) -> xr.Dataset:
    """The unperturbed run is the one condition ``None`` of the same batched runner."""
    if perturbation is None:
        conditions, batched = [None], False
    else:
        conditions, batched = as_conditions(perturbation)
        specs = [None if p is None else p.to_dict() for p in conditions]
        attrs["perturbation" if not batched else "perturbations"] = json.dumps(
            specs if batched else specs[0], sort_keys=True
        )
    runs = simulate_conditions(model, batch, conditions, **run)
    inputs = batch.inputs if runs["input"] is None else runs["input"][0]
    ds = _trajectories(model, batch, runs["state"][0], inputs, runs["output"][0], attrs)
    if not batched:
        return ds.assign(**_model_variables(model, [inputs], runs["state"][:1], False))
    lead = ("condition",)
    ds = ds.assign(
        state=(lead + ds["state"].dims, runs["state"]),
        output=(lead + ds["output"].dims, runs["output"]),
    )
    per_condition = runs["input"] if runs["input"] is not None else [batch.inputs] * len(conditions)
    ds = ds.assign(**_model_variables(model, per_condition, runs["state"], True))
    if runs["input"] is not None:
        ds = ds.assign(input=(lead + ds["input"].dims, runs["input"]))
    return ds.assign_coords(
        condition=np.arange(len(conditions)),
        perturbation=("condition", [condition_name(p) for p in conditions]),
        perturbation_target=("condition", ["none" if p is None else p.target for p in conditions]),
        operation=("condition", ["none" if p is None else p.operation for p in conditions]),
        strength=("condition", [0.0 if p is None else p.strength for p in conditions]),
    )
