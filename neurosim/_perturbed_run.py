"""Run many perturbation conditions as one batched simulation.

Every condition sees the same trials and the same recurrent noise (common random
numbers), so differences between conditions come from the perturbations alone. The
runner follows the model contract (``initial_state``, ``input_drive``,
``step_driven``, ``readout``); the state of every condition is held as rows
``[C·B, N]`` of one batch, and weight perturbations run through
``torch.func.functional_call`` vectorised over conditions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from paradigms import TrialBatch

from ._device import resolve_device
from ._perturbation import Condition, Perturbation
from ._train import quiet_mode, seeded_rng, seeded_torch
from .models import RecurrentModel


@dataclass
class _Affine:
    """Per-condition ``x ← a·x + c (+ sd·ξ) (+ kick at its step)`` inside each window."""

    a: torch.Tensor  # [C, n]
    c: torch.Tensor  # [C, n]
    sd: torch.Tensor  # [C, n]
    kick: torch.Tensor  # [C, n]
    window: torch.Tensor  # [C, T] bool
    kick_step: torch.Tensor  # [C] long, -1 for none
    used: bool = False
    rows: list[int] = field(default_factory=list)  # conditions it perturbs
    noisy: list[int] = field(default_factory=list)  # conditions drawing noise


def _new_affine(c: int, n: int, t: int, like: torch.Tensor) -> _Affine:
    kw = {"dtype": like.dtype, "device": like.device}
    return _Affine(
        a=torch.ones(c, n, **kw),
        c=torch.zeros(c, n, **kw),
        sd=torch.zeros(c, n, **kw),
        kick=torch.zeros(c, n, **kw),
        window=torch.zeros(c, t, dtype=torch.bool, device=like.device),
        kick_step=torch.full((c,), -1, dtype=torch.long),
    )


def _window_steps(p: Perturbation, n_steps: int, dt: float) -> np.ndarray:
    time = np.arange(n_steps) * dt
    if p.window is None:
        return np.ones(n_steps, bool)
    return (time >= p.window[0]) & (time < p.window[1])


def _unit_elements(p: Perturbation, model: RecurrentModel) -> np.ndarray:
    n = model.n_units
    if p.target == "module" or (p.target == "weights" and p.module is not None):
        modules = np.asarray(model.unit_coords()["module"]).astype(str)
        idx = np.flatnonzero(modules == p.module)
        if idx.size == 0:
            raise ValueError(
                f"Perturbation.module {p.module!r} names no unit; the model's modules are "
                f"{sorted(set(modules.tolist()))}"
            )
        return idx
    if p.units is not None:
        if max(p.units) >= n:
            raise ValueError(
                f"Perturbation.units {list(p.units)} out of range: the model has {n} units "
                f"(indices 0..{n - 1})"
            )
        return np.asarray(p.units)
    return np.arange(n)


def _input_elements(p: Perturbation, n_inputs: int) -> np.ndarray:
    if p.units is None:
        return np.arange(n_inputs)
    if max(p.units) >= n_inputs:
        raise ValueError(
            f"Perturbation.units {list(p.units)} (input channels) out of range: the model has "
            f"{n_inputs} inputs (0..{n_inputs - 1})"
        )
    return np.asarray(p.units)


def _weight_name(p: Perturbation, model: RecurrentModel) -> str:
    params = dict(model.named_parameters())
    name = p.weights or getattr(model, "recurrent_weights", None)
    if name is None or name not in params:
        raise ValueError(
            f"Perturbation.weights {p.weights!r} is not a parameter of {type(model).__name__}; "
            f"accepted: {sorted(params)}"
        )
    return name


def _subset(p: Perturbation, elements: np.ndarray, seed: int) -> np.ndarray:
    """Lesion/clamp: the first round(strength·n) of a seeded permutation (nested in strength)."""
    if p.operation not in ("lesion", "clamp"):
        return elements
    order = seeded_rng(seed, 20, p.seed).permutation(elements)
    return np.sort(order[: int(round(p.strength * len(elements)))])


def _fill(aff: _Affine, i: int, p: Perturbation, idx: np.ndarray, steps: np.ndarray, seed: int):
    aff.used = True
    aff.rows.append(i)
    aff.window[i] = torch.from_numpy(steps).to(aff.window.device)
    sel = torch.from_numpy(idx).long().to(aff.a.device)
    if p.operation in ("lesion", "clamp"):
        aff.a[i, sel] = 0.0
        aff.c[i, sel] = 0.0 if p.operation == "lesion" else p.value
    elif p.operation == "scale":
        aff.a[i, sel] = 1.0 - p.strength
    elif p.operation == "noise":
        aff.sd[i, sel] = p.strength
        if p.strength > 0:
            aff.noisy.append(i)
    else:  # kick
        direction = seeded_rng(seed, 22, p.seed).standard_normal(len(idx))
        direction *= p.strength / np.linalg.norm(direction)
        aff.kick[i, sel] = torch.from_numpy(direction).to(aff.kick)
        first = np.flatnonzero(steps)
        aff.kick_step[i] = int(first[0]) if first.size else -1


class _Plan:
    """Everything a batch of conditions needs, resolved against one model and time grid."""

    def __init__(
        self,
        model: RecurrentModel,
        conditions: Sequence[Condition],
        n_steps: int,
        dt: float,
        seed: int,
    ) -> None:
        like = next(model.parameters())
        c, self.seed, self.n_conditions = len(conditions), seed, len(conditions)
        self.state = _new_affine(c, model.n_units, n_steps, like)
        self.input = _new_affine(c, model.n_inputs, n_steps, like)
        self.noise_seeds = [0 if p is None else p.seed for p in conditions]
        base = dict(model.named_parameters())
        self.weights: dict[str, torch.Tensor] = {}
        self.weight_window = torch.ones(c, n_steps, dtype=torch.bool)
        for i, p in enumerate(conditions):
            if p is None or p.is_identity:
                continue
            steps = _window_steps(p, n_steps, dt)
            if p.target == "inputs":
                idx = _subset(p, _input_elements(p, model.n_inputs), seed)
                _fill(self.input, i, p, idx, steps, seed)
            elif p.target != "weights":
                _fill(self.state, i, p, _subset(p, _unit_elements(p, model), seed), steps, seed)
            else:
                self._weights(i, p, base, model, steps, seed)

    def _weights(self, i: int, p: Perturbation, base, model, steps, seed) -> None:
        name = _weight_name(p, model)
        w0 = base[name].detach()
        if name not in self.weights:
            self.weights[name] = w0.expand(self.n_conditions, *w0.shape).clone()
        entries = np.arange(w0.numel()).reshape(w0.shape)
        if p.units is not None or p.module is not None:
            if w0.ndim != 2 or w0.shape[0] != model.n_units:
                raise ValueError(
                    f"Perturbation.units/module select rows of {name!r}, whose shape "
                    f"{tuple(w0.shape)} has no unit rows; give neither to perturb all of it"
                )
            entries = entries[_unit_elements(p, model)]
        idx = torch.from_numpy(_subset(p, entries.ravel(), seed)).long()
        flat = self.weights[name][i].view(-1)
        if p.operation in ("lesion", "clamp"):
            flat[idx] = 0.0 if p.operation == "lesion" else p.value
        elif p.operation == "scale":
            flat[idx] *= 1.0 - p.strength
        else:  # noise: static, relative to the RMS of the targeted weights
            rms = flat[idx].pow(2).mean().sqrt()
            xi = torch.randn(len(idx), generator=seeded_torch(seed, 23, p.seed), dtype=flat.dtype)
            flat[idx] += p.strength * rms * xi.to(flat.device)
        self.weight_window[i] = torch.from_numpy(steps)

    # -- applying -----------------------------------------------------------------------
    def noise_draws(self, aff: _Affine, b: int, t: int, chunk: int):
        """``(rows, ξ·sd)``: noise ``[n_noisy, b, T, n]`` for the conditions that draw it."""
        if not aff.noisy:
            return None
        n = aff.a.shape[1]
        xi = torch.empty(len(aff.noisy), b, t, n, dtype=aff.a.dtype)
        for j, i in enumerate(aff.noisy):
            g = seeded_torch(self.seed, 21, self.noise_seeds[i], chunk)
            torch.randn(b, t, n, generator=g, dtype=aff.a.dtype, out=xi[j])
        rows = torch.tensor(aff.noisy, device=aff.a.device)
        return rows, xi.to(aff.a.device).mul_(aff.sd[rows][:, None, None, :])


def _apply(aff: _Affine, x: torch.Tensor, k: int, noise, ones: torch.Tensor) -> torch.Tensor:
    """``x [C, b, n]`` at step ``k`` → perturbed (exactly ``x`` where nothing applies)."""
    win = aff.window[:, k, None]
    a = torch.where(win, aff.a, ones)[:, None]
    c = (aff.c * win)[:, None]
    if bool((aff.kick_step == k).any()):
        c = c + (aff.kick * (aff.kick_step == k).to(aff.kick)[:, None])[:, None]
    out = torch.addcmul(c, a, x)
    if noise is not None:
        rows, xi = noise
        out.index_add_(0, rows, xi[:, :, k] * win[rows, None].to(xi))
    return out


class _Call(nn.Module):
    """Calls one method of ``model``, so ``functional_call`` can swap its parameters."""

    def __init__(self, model: nn.Module, method: str) -> None:
        super().__init__()
        self.model, self.method = model, method

    def forward(self, *args):
        return getattr(self.model, self.method)(*args)


def _run_chunk(
    model: RecurrentModel,
    plan: _Plan,
    inputs: torch.Tensor,
    eps: torch.Tensor | None,
    chunk: int,
    keep_state: bool,
):
    c, (b, t, n_in) = plan.n_conditions, inputs.shape
    x = inputs.unsqueeze(0).expand(c, b, t, n_in)
    if plan.input.used:  # cheap: inputs are few channels
        xi = plan.noise_draws(plan.input, b, t, chunk)
        ones = torch.ones_like(plan.input.a)
        x = torch.stack([_apply(plan.input, x[:, :, k], k, xi, ones) for k in range(t)], 2)
    h = model.initial_state(c * b)
    xs = plan.noise_draws(plan.state, b, t, chunk)
    ones = torch.ones_like(plan.state.a)
    hs = torch.empty(c * b, t, model.n_units, dtype=ones.dtype, device=ones.device)
    if plan.weights:
        step, readout, _ = _weight_functions(model, plan, x)
    else:
        step, readout = model.driven_stepper(), model.readout
        drive = model.input_drive(inputs)  # shared by every condition with intact inputs
        rows = torch.tensor(plan.input.rows, dtype=torch.long, device=ones.device)
        if len(rows):
            own = model.input_drive(x[rows].reshape(len(rows) * b, t, n_in)).view(
                len(rows), b, t, -1
            )
    for k in range(t):
        e = None if eps is None else (eps[:, k] if c == 1 else eps[:, k].repeat(c, 1))
        if plan.weights:
            h = step(h, e, k)
        else:
            d = drive[:, k] if c == 1 else drive[:, k].repeat(c, 1)
            if len(rows):
                d = d.view(c, b, -1).index_copy(0, rows, own[:, :, k]).view(c * b, -1)
            h = step(h, d, e)
        if plan.state.used:
            h = _apply(plan.state, h.view(c, b, -1), k, xs, ones).view(c * b, -1)
        hs[:, k] = h
    y = readout(hs)
    return y.view(c, b, t, -1), hs.view(c, b, t, -1) if keep_state else None, x


def _weight_functions(model: RecurrentModel, plan: _Plan, x: torch.Tensor):
    """Step/readout with per-condition parameters (vmapped over conditions when C > 1)."""
    c, b = x.shape[:2]
    base = {k: v.detach() for k, v in model.named_parameters()}
    pert = {f"model.{k}": v for k, v in plan.weights.items()}
    win = plan.weight_window.to(x.device)
    always = bool(win.all())
    calls = {m: _Call(model, m) for m in ("input_drive", "step_driven", "readout")}

    def params_at(k: int | None) -> dict[str, torch.Tensor]:
        if k is None or always:
            return pert
        out = {}
        for key, stacked in pert.items():
            w = win[:, k].view(-1, *([1] * (stacked.ndim - 1)))
            out[key] = torch.where(w, stacked, base[key.removeprefix("model.")])
        return out

    def call(method: str, params, *args):
        if c == 1:
            one = {k: v[0] for k, v in params.items()}
            return torch.func.functional_call(calls[method], one, args)
        return torch.vmap(lambda p, *a: torch.func.functional_call(calls[method], p, a), in_dims=0)(
            params, *args
        )

    if always:
        drive = call("input_drive", pert, x if c > 1 else x[0])
        drive = drive.reshape(c * b, *drive.shape[-2:])
    else:
        drive = None

    def step(h, e, k):
        p = params_at(k)
        d = drive[:, k] if drive is not None else _drive_at(k, p)
        if c == 1:
            return call("step_driven", p, h, d) if e is None else call("step_driven", p, h, d, e)
        hv, dv = h.view(c, b, -1), d.view(c, b, -1)
        if e is None:
            out = call("step_driven", p, hv, dv)
        else:
            out = call("step_driven", p, hv, dv, e.view(c, b, -1))
        return out.reshape(c * b, -1)

    def _drive_at(k: int, p) -> torch.Tensor:
        d = call("input_drive", p, x[:, :, k : k + 1] if c > 1 else x[0, :, k : k + 1])
        return d.reshape(c * b, -1)

    def readout(hs: torch.Tensor) -> torch.Tensor:
        t = hs.shape[1]
        if always:
            y = call("readout", pert, hs if c == 1 else hs.view(c, b, t, -1))
            return y.reshape(c * b, t, -1)
        ys = [call("readout", params_at(k), _cb(hs[:, k], c, b)) for k in range(t)]
        return torch.stack([y.reshape(c * b, -1) for y in ys], dim=1)

    return step, readout, drive


def _cb(h: torch.Tensor, c: int, b: int) -> torch.Tensor:
    return h if c == 1 else h.view(c, b, -1)


def simulate_conditions(
    model: RecurrentModel,
    batch: TrialBatch,
    conditions: Sequence[Condition],
    *,
    seed: int = 0,
    noise: bool = True,
    batch_size: int | None = None,
    device: str = "auto",
    keep_state: bool = True,
    quiet: bool = False,
) -> dict[str, np.ndarray | None]:
    """Simulate every condition on the same trials in one batched run.

    Parameters
    ----------
    model : RecurrentModel
    batch : paradigms.TrialBatch
        The trials every condition runs.
    conditions : sequence of Perturbation or None
        One entry per condition; ``None`` is the unperturbed run.
    seed : int
        Seeds the recurrent noise (shared by all conditions, as in :func:`neurosim.simulate`)
        and the perturbations' random parts.
    noise : bool, default True
    batch_size : int, optional
        Trials per chunk (each chunk runs all conditions); all at once by default.
    device : str, default "auto"
    keep_state : bool, default True
        Return states (``[C, B, T, N]``); outputs only when False (saves memory).
    quiet : bool

    Returns
    -------
    dict
        ``output [C, B, T, O]``, ``state [C, B, T, N]`` or None, and ``input`` —
        ``[C, B, T, I]`` when some condition perturbs inputs, else None.

    Examples
    --------
    >>> import numpy as np, paradigms, neurosim
    >>> task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
    >>> net = neurosim.models.RateRNN(task.n_inputs, 16, task.n_outputs, dt=task.dt)
    >>> trials = task.batch(4, np.random.default_rng(0))
    >>> runs = neurosim.simulate_conditions(
    ...     net, trials, [None, neurosim.Perturbation("state", "lesion")], seed=0)
    >>> runs["output"].shape[:2], float(np.abs(runs["state"][1]).max())
    ((2, 4), 0.0)
    """
    conditions = list(conditions)
    if not conditions:
        raise ValueError("conditions is empty; give at least one (None = unperturbed)")
    if batch.inputs.shape[-1] != model.n_inputs:
        raise ValueError(
            f"the trials have {batch.inputs.shape[-1]} inputs; the model takes {model.n_inputs}"
        )
    dev = resolve_device(device)
    model = model.to(dev)
    n, t = batch.n_trials, batch.n_steps
    size = n if batch_size is None else int(batch_size)
    if size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    parts: dict[str, list[np.ndarray]] = {"output": [], "state": [], "input": []}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            plan = _Plan(model, conditions, t, batch.dt, seed)
            inputs = torch.from_numpy(np.ascontiguousarray(batch.inputs, dtype=np.float32))
            starts = range(0, n, size)
            bar = tqdm(starts, desc="simulate", disable=quiet_mode(quiet) or len(starts) == 1)
            for i, a in enumerate(bar):
                x = inputs[a : a + size].to(dev)
                eps = model._resolve_noise(
                    noise, (x.shape[0], t, model.n_units), seeded_torch(seed, 11, i)
                )
                y, h, xin = _run_chunk(model, plan, x, eps, i, keep_state)
                parts["output"].append(y.cpu().numpy())  # a view on CPU: no copy
                if keep_state:
                    parts["state"].append(h.cpu().numpy())
                if plan.input.used:
                    parts["input"].append(xin.cpu().numpy())
    finally:
        model.train(was_training)
    out: dict[str, np.ndarray | None] = {}
    for key, arrays in parts.items():
        out[key] = (
            None if not arrays else arrays[0] if len(arrays) == 1 else np.concatenate(arrays, 1)
        )
    return out
