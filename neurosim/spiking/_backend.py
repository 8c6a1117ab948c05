"""Run a Brian2 network on a paradigm's trials and return spikes as trajectories."""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import json
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import xarray as xr

from paradigms import Paradigm, TrialBatch

from .._perturbation import Perturbation
from .._trajectories import build_trajectories

Target = Literal["numpy", "cython", "cpp_standalone"]
TARGETS = ("numpy", "cython", "cpp_standalone")
_VERSIONED = ("neurosim", "brian2", "numpy", "xarray")


@functools.cache
def brian2() -> Any:
    """Import Brian2 once, without the pyparsing deprecation flood."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import brian2 as b2
    return b2


@dataclass
class BuiltNetwork:
    """What a network builder hands the backend.

    Attributes
    ----------
    objects : list
        Every Brian2 object to put in the ``Network`` (the neurons included).
    neurons : brian2.NeuronGroup
        ``B · n_units`` neurons, trial-major: neuron ``b · n_units + k`` is unit ``k`` of trial ``b``.
        Spike and state monitors are attached here.
    n_units : int
    """

    objects: list[Any]
    neurons: Any
    n_units: int


@runtime_checkable
class SpikingNetwork(Protocol):
    """The contract :func:`run_spiking` drives (see :class:`LIFPopulation`).

    ``build(inputs [B, T, I], dt, gate [T, B·N] or None, trial_seeds [B] or None) ->
    BuiltNetwork`` makes ``B`` independent copies on ``brian2.defaultclock.dt``; ``gate``
    (1 normal, 0 silenced, on paradigm steps) must remove drive and block spikes;
    randomness drawn outside Brian2 uses ``trial_seeds[b]`` for copy ``b``, so a trial's
    draws do not depend on which trials run beside it. ``unit_coords()`` labels units (``module`` = population),
    ``config()`` is JSON-serialisable, ``readout(rates [B, T, N] Hz, n_outputs)`` gives
    ``output [B, T, O]``.
    """

    n_units: int

    def build(
        self,
        inputs: np.ndarray,
        dt: float,
        gate: np.ndarray | None = None,
        trial_seeds: Sequence[int] | None = None,
    ) -> BuiltNetwork: ...

    def unit_coords(self) -> dict[str, list[Any]]: ...

    def config(self) -> dict[str, Any]: ...

    def readout(self, rates: np.ndarray, n_outputs: int) -> np.ndarray: ...


Silence = tuple[Sequence[int], tuple[float, float] | None]


def _versions() -> dict[str, str]:
    out = {}
    for name in _VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _to_boundary(b2: Any, values: Any) -> tuple[np.ndarray, str]:
    """Strip Brian2 units: voltages in mV, times in ms, rates in Hz, currents in nA."""
    for unit, name in ((b2.mV, "mV"), (b2.ms, "ms"), (b2.Hz, "Hz"), (b2.nA, "nA"), (b2.nS, "nS")):
        if b2.get_dimensions(values) is b2.get_dimensions(unit):
            return np.asarray(values / unit, dtype=np.float32), name
    if b2.get_dimensions(values) is b2.DIMENSIONLESS:
        return np.asarray(values, dtype=np.float32), "1"
    return np.asarray(values, dtype=np.float32), f"SI ({b2.get_dimensions(values)})"


@contextlib.contextmanager
def _codegen(b2: Any, target: str, cache_dir: Path | None, sim_dt: float) -> Iterator[None]:
    """Set the code generation target, cache and clock for one run, then restore them
    (and numpy's global random state, which ``brian2.seed`` reseeds)."""
    prefs = b2.prefs
    old = (prefs.codegen.target, prefs.codegen.runtime.cython.cache_dir, b2.defaultclock.dt)
    prefs.codegen.target = "numpy" if target == "cpp_standalone" else target
    if cache_dir is not None and target == "cython":
        prefs.codegen.runtime.cython.cache_dir = str(cache_dir)
    b2.defaultclock.dt = sim_dt * b2.ms
    global_rng = np.random.get_state()  # noqa: NPY002 - brian2.seed reseeds it
    try:
        yield
    finally:
        np.random.set_state(global_rng)  # noqa: NPY002
        prefs.codegen.target, prefs.codegen.runtime.cython.cache_dir = old[0], old[1]
        b2.defaultclock.dt = old[2]


def _run_copies(
    network: SpikingNetwork,
    inputs: np.ndarray,
    dt: float,
    gate: np.ndarray,
    trial_seeds: list[int],
    *,
    sim_dt: float,
    seed: int,
    target: str,
    cache_dir: Path | None,
    state_monitors: Sequence[str],
) -> dict[str, Any]:
    """Simulate ``inputs.shape[0]`` copies in one Brian2 network; raw spikes and states."""
    b2 = brian2()
    n_steps = inputs.shape[1]
    standalone = target == "cpp_standalone"
    with _codegen(b2, target, cache_dir, sim_dt), contextlib.ExitStack() as stack:
        if standalone:
            base = cache_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
            b2.set_device("cpp_standalone", directory=str(Path(base) / "standalone"),
                          build_on_run=True)  # fmt: skip
            stack.callback(lambda: (b2.device.reinit(), b2.set_device("runtime")))
        built = network.build(inputs, dt, gate, trial_seeds)
        spikes = b2.SpikeMonitor(built.neurons)
        objects = [*built.objects, spikes]
        states = None
        if state_monitors:
            states = b2.StateMonitor(
                built.neurons, list(state_monitors), record=True, dt=dt * b2.ms
            )
            objects.append(states)
        net = b2.Network(*objects)
        b2.seed(seed)
        net.run(n_steps * dt * b2.ms, namespace={})
        step = np.rint(np.asarray(spikes.t_[:], dtype=np.float64) / (sim_dt * 1e-3)).astype(
            np.int64
        )
        out: dict[str, Any] = {"neuron": np.asarray(spikes.i[:], dtype=np.int64), "step": step}
        out["states"] = {}
        for name in state_monitors:
            values, unit = _to_boundary(b2, getattr(states, name)[:])  # [N_total, T_rec]
            out["states"][name] = (values[:, :n_steps].T, unit)  # [T, N_total]
    return out


def _silence_gate(
    silence: Any,
    perturbation: Perturbation | None,
    unit_coords: dict[str, list[Any]],
    n_units: int,
    n_steps: int,
    dt: float,
    seed: int,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """``gate [T, N]``: 0 where a unit is silenced on a paradigm step, and the specs used."""
    specs: list[tuple[np.ndarray, tuple[float, float] | None]] = []
    if silence is not None:
        single = (
            isinstance(silence, tuple) and len(silence) == 2 and np.ndim(silence[0]) == 1
            and (silence[1] is None or np.ndim(silence[1]) == 1)
        )  # fmt: skip
        items = [silence] if single else list(silence)
        for units, window in items:
            specs.append((np.asarray(units, dtype=np.int64).ravel(), window))
    if perturbation is not None and perturbation.target != "inputs":
        p = perturbation
        if not isinstance(p, Perturbation):
            raise TypeError(f"perturbation must be a neurosim.Perturbation, got {type(p).__name__}")
        if p.target not in ("units", "module", "state") or p.operation != "lesion":
            raise ValueError(
                "spiking networks support Perturbation(target in ('units', 'module', 'state'), "
                "operation='lesion') and Perturbation(target='inputs', any operation); "
                f"got target={p.target!r}, operation={p.operation!r}"
            )
        if p.target == "units":
            elements = np.asarray(p.units, dtype=np.int64)
        elif p.target == "module":
            mods = np.asarray(unit_coords["module"])
            elements = np.flatnonzero(mods == p.module)
            if elements.size == 0:
                raise ValueError(
                    f"Perturbation.module {p.module!r} is not a population; "
                    f"accepted: {sorted(set(mods.tolist()))}"
                )
        else:
            elements = np.arange(n_units)
        order = np.random.default_rng([seed, 20, p.seed]).permutation(elements)
        specs.append((np.sort(order[: int(round(p.strength * len(elements)))]), p.window))
    gate = np.ones((n_steps, n_units))
    used = []
    times = np.arange(n_steps) * dt
    for units, window in specs:
        if units.size and (units.min() < 0 or units.max() >= n_units):
            raise ValueError(f"silence units must lie in [0, {n_units}); got {units.tolist()}")
        start, stop = (-np.inf, np.inf) if window is None else map(float, window)
        if not start < stop:
            raise ValueError(
                f"silence window must be (start, stop) ms with start < stop; got {window}"
            )
        rows = (times >= start) & (times < stop)
        gate[np.ix_(rows, units)] = 0.0
        used.append({"units": units.tolist(), "window": None if window is None else [start, stop]})
    return gate, used


def _perturb_inputs(inputs: np.ndarray, p: Perturbation, dt: float, seed: int) -> np.ndarray:
    """Apply an ``inputs`` perturbation to ``inputs [B, T, I]`` (a copy) on its window."""
    n_b, n_t, n_in = inputs.shape
    channels = np.arange(n_in) if p.units is None else np.asarray(p.units, dtype=np.int64)
    if channels.size and (channels.min() < 0 or channels.max() >= n_in):
        raise ValueError(
            f"Perturbation.units {list(p.units or ())} must be input channels in [0, {n_in})"
        )
    times = np.arange(n_t) * dt
    start, stop = (-np.inf, np.inf) if p.window is None else map(float, p.window)
    steps = np.flatnonzero((times >= start) & (times < stop))
    out = inputs.copy()
    if p.operation in ("lesion", "clamp"):
        order = np.random.default_rng([seed, 20, p.seed]).permutation(channels)
        channels = np.sort(order[: int(round(p.strength * len(channels)))])
    sel = np.ix_(np.arange(n_b), steps, channels)
    rng = np.random.default_rng([seed, 40, p.seed])
    if p.operation == "lesion":
        out[sel] = 0.0
    elif p.operation == "clamp":
        out[sel] = p.value
    elif p.operation == "scale":
        out[sel] *= 1.0 - p.strength
    elif p.operation == "noise":
        out[sel] += p.strength * rng.standard_normal((n_b, steps.size, channels.size))
    elif p.operation == "kick" and steps.size and channels.size:
        direction = rng.standard_normal((n_b, channels.size))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        out[:, steps[0], channels] += p.strength * direction
    return out


def run_spiking(
    network: SpikingNetwork,
    paradigm: Paradigm | TrialBatch,
    n_trials: int | None = None,
    seed: int = 0,
    *,
    target: Target = "numpy",
    batched: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    state_monitors: Sequence[str] = (),
    sim_dt: float = 0.1,
    silence: Silence | Sequence[Silence] | None = None,
    perturbation: Perturbation | None = None,
) -> xr.Dataset:
    """Drive a Brian2 spiking network with a paradigm's trials; spikes back as trajectories.

    The batch's inputs become ``TimedArray`` s on the paradigm's ``dt`` (currents or
    Poisson rates, as the network decides). With ``batched=True`` all trials run at once
    as independent copies inside one Brian2 network; otherwise one trial at a time.

    Parameters
    ----------
    network : SpikingNetwork
        E.g. :class:`LIFPopulation`.
    paradigm : paradigms.Paradigm or paradigms.TrialBatch
        An open-loop paradigm (its batch is drawn with ``seed``, the same trials
        ``neurosim.simulate`` draws) or a ready batch.
    n_trials : int, optional
        Required for a paradigm; for a batch, None or its size.
    seed : int, default 0
        Seeds the batch and Brian2 (``brian2.seed``); one-at-a-time runs seed trial ``b``
        with ``(seed, b)``. Randomness a network pre-draws in numpy (``source="numpy"``
        Poisson trains) uses ``(seed, 30, b)`` for trial ``b`` in both modes, so such runs
        give the same spikes batched or not.
    target : {"numpy", "cython", "cpp_standalone"}, default "numpy"
        Brian2 code generation target. ``cython`` compiles on a cold cache (~45 s).
    batched : bool, default True
    cache_dir : path, optional
        Cython compile cache (``prefs.codegen.runtime.cython.cache_dir``), or the
        folder of the ``cpp_standalone`` project (a temporary one if omitted).
    state_monitors : sequence of str
        Neuron variables (e.g. ``("v",)``) recorded at each step's start ``k·dt``; each
        becomes a variable over ``trial, time, unit`` with an ``units`` attr (mV, ms, Hz, nA).
    sim_dt : float, default 0.1
        Integration step in ms; ``dt`` must be a whole multiple of it.
    silence : (units, (start, stop)) or a list of them, optional
        Units (indices on ``unit``) silenced on the steps ``k`` with ``start ≤ k·dt < stop``
        (ms; ``None`` = whole trial): no drive, no spikes.
    perturbation : neurosim.Perturbation, optional
        ``lesion`` of ``units``, a ``module`` or the ``state``, mapped onto ``silence``
        (a fraction ``strength`` of the targets, chosen as ``neurosim.simulate`` does); or
        any operation on ``inputs`` (channels in ``units``, all by default), applied to the
        batch's inputs before they become ``TimedArray`` s: ``lesion``, ``clamp``,
        ``scale``, ``noise`` (Gaussian, SD ``strength``, per paradigm step) and ``kick``.
        The dataset's ``input`` holds the perturbed inputs.

    Returns
    -------
    xarray.Dataset
        The trajectory schema (:func:`neurosim.validate_trajectories`) with
        ``state`` = binned firing rate (Hz, ``spike_count / dt``), ``spike_count`` (int32,
        spikes of unit in ``[k·dt, (k+1)·dt)``), ``population_rate`` (Hz, over
        ``trial, time, population``; a population is a ``module``), exact spikes on dim
        ``spike``: ``spike_time`` (ms), ``spike_trial``, ``spike_unit``, sorted by trial,
        time, unit; and any ``state_monitors``.

    Examples
    --------
    >>> import paradigms
    >>> from neurosim.spiking import LIFPopulation, run_spiking
    >>> task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
    >>> pop = LIFPopulation(4, w_in=30.0, w_out=0.01 * np.ones((task.n_outputs, 4)))
    >>> ds = run_spiking(pop, task, n_trials=2, seed=0)
    >>> ds.spike_count.dims, int(ds.spike_count.sum()) == ds.sizes["spike"]
    (('trial', 'time', 'unit'), True)
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if not isinstance(network, SpikingNetwork):
        raise TypeError(f"network must follow SpikingNetwork (build, unit_coords, config, readout); "
                        f"got {type(network).__name__}")  # fmt: skip
    if isinstance(paradigm, TrialBatch):
        batch, pid, pkw = paradigm, "", {}
        if n_trials is not None and int(n_trials) != batch.n_trials:
            raise ValueError(f"n_trials={n_trials} but the batch has {batch.n_trials} trials")
    else:
        if getattr(paradigm, "closed_loop", False):
            raise ValueError(
                f"paradigm {paradigm.id!r} is closed-loop; run_spiking needs an open-loop one"
            )
        if n_trials is None or int(n_trials) < 1:
            raise ValueError(f"n_trials must be a positive integer, got {n_trials!r}")
        batch = paradigm.batch(int(n_trials), np.random.default_rng([seed, 10]))
        pid, pkw = paradigm.id, dict(paradigm.kwargs)
    dt, (n_b, n_t, _) = float(batch.dt), batch.inputs.shape
    per_bin = int(round(dt / sim_dt))
    if not (sim_dt > 0 and per_bin >= 1 and abs(per_bin * sim_dt - dt) <= 1e-9 * dt):
        raise ValueError(f"sim_dt must be > 0 and divide dt={dt} ms; got sim_dt={sim_dt}")
    coords = network.unit_coords()
    taken = {"state", "input", "output", "target", "mask", "valid", "spike_count"}
    taken |= {"population_rate", "spike_time", "spike_trial", "spike_unit", *coords}
    taken |= set(batch.covariates)
    if bad := sorted(taken & set(map(str, state_monitors))):
        raise ValueError(f"state_monitors {bad} clash with dataset names; taken: {sorted(taken)}")
    n = int(network.n_units)
    gate, silenced = _silence_gate(silence, perturbation, coords, n, n_t, dt, seed)
    cache = None if cache_dir is None else Path(cache_dir)
    kw = dict(sim_dt=sim_dt, target=target, cache_dir=cache, state_monitors=tuple(state_monitors))
    inputs = np.asarray(batch.inputs, dtype=np.float64)
    if perturbation is not None and perturbation.target == "inputs":
        inputs = _perturb_inputs(inputs, perturbation, dt, seed)
    draw_seeds = [
        int(np.random.SeedSequence([seed, 30, b]).generate_state(1)[0]) for b in range(n_b)
    ]
    if batched:
        all_gates = np.tile(gate, (1, n_b))
        runs = [_run_copies(network, inputs, dt, all_gates, draw_seeds, seed=seed, **kw)]
        groups = [np.arange(n_b)]
    else:
        runs, groups = [], []
        for b in range(n_b):
            trial_seed = int(np.random.SeedSequence([seed, b]).generate_state(1)[0])
            one = [draw_seeds[b]]
            runs.append(
                _run_copies(network, inputs[b : b + 1], dt, gate, one, seed=trial_seed, **kw)
            )
            groups.append(np.array([b]))
    trial = np.concatenate([g[r["neuron"] // n] for g, r in zip(groups, runs, strict=True)])
    unit = np.concatenate([r["neuron"] % n for r in runs])
    step = np.concatenate([r["step"] for r in runs])
    order = np.lexsort((unit, step, trial))
    trial, unit, step = trial[order], unit[order], step[order]
    counts = np.zeros((n_b, n_t, n), dtype=np.int32)
    np.add.at(counts, (trial, np.minimum(step // per_bin, n_t - 1), unit), 1)
    rates = counts.astype(np.float32) * np.float32(1000.0 / dt)
    output = np.asarray(network.readout(rates, batch.targets.shape[-1] if batch.target_kind ==
                                        "continuous" else _n_outputs(paradigm, batch)), np.float32)  # fmt: skip
    attrs = {
        "paradigm": pid,
        "paradigm_kwargs": json.dumps(pkw, sort_keys=True, default=str),
        "model": json.dumps(network.config(), sort_keys=True, default=str),
        "seed": int(seed),
        "spiking": json.dumps(
            {"target": target, "batched": bool(batched), "sim_dt": sim_dt, "silenced": silenced}
        ),
        "perturbation": json.dumps(perturbation.to_dict() if perturbation else None),
        "versions": json.dumps(_versions(), sort_keys=True),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    ds = build_trajectories(
        state=rates, inputs=inputs.astype(np.float32), outputs=output, targets=batch.targets,
        mask=batch.mask, valid=batch.valid, dt=dt, trials=batch.trials, unit_coords=coords, attrs=attrs,
        covariates=batch.covariates,
    )  # fmt: skip
    ds["state"].attrs.update(units="Hz", long_name="binned firing rate")
    ds["spike_count"] = (("trial", "time", "unit"), counts, {"long_name": "spikes per bin"})
    mods = np.asarray(coords["module"])
    pops = list(dict.fromkeys(mods.tolist()))
    pop_rate = np.stack([rates[..., mods == m].mean(-1) for m in pops], axis=-1)
    ds = ds.assign_coords(population=("population", np.array(pops, dtype=str)))
    ds["population_rate"] = (("trial", "time", "population"), pop_rate, {"units": "Hz"})
    ds["spike_time"] = ("spike", step * sim_dt, {"units": "ms"})
    ds["spike_trial"] = ("spike", trial)
    ds["spike_unit"] = ("spike", unit)
    for name in state_monitors:
        unit_name = runs[0]["states"][name][1]
        per_trial = [r["states"][name][0].reshape(n_t, -1, n) for r in runs]  # [T, b, N]
        values = np.concatenate(per_trial, axis=1).transpose(1, 0, 2)
        ds[str(name)] = (("trial", "time", "unit"), values, {"units": unit_name, "monitor": 1})
    return ds


def _n_outputs(paradigm: Paradigm | TrialBatch, batch: TrialBatch) -> int:
    n_out = getattr(paradigm, "n_outputs", None)
    if n_out is None:  # a bare class-target batch: one output per class seen
        n_out = int(batch.targets.max()) + 1 if batch.targets.size else 1
    return int(n_out)
