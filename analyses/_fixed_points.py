"""Fixed and slow points of a one-step map, and its linearisation (Golub & Sussillo's finder).

The map is any differentiable ``step(h, x) -> h_next`` on batched states ``[B, N]`` that acts on
each row independently (our models' ``model.step``). Fixed points minimise
``q(h) = ½‖F(h, x) − h‖²``: all candidates are optimised at once (Adam with a decaying learning
rate), then polished by a few batched Levenberg–Marquardt (damped Newton) steps, which converge
quadratically onto stable points, saddles and sources alike.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import nn
from tqdm.auto import tqdm

from neurosim import resolve_device
from neurosim._train import quiet_mode
from neurosim._trajectories import _encode_attr

Step = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]

_DTYPES = {torch.float32: "float32", torch.float64: "float64"}
_JAC_ELEMENTS = 1 << 24  # Jacobian entries per chunk (128 MiB in float64)
_STABILITY = ("stable", "unstable", "saddle", "marginal")


# ----------------------------------------------------------------------------- helpers


def _check(name: str, value: Any, ok: bool, accepted: str) -> None:
    if not ok:
        raise ValueError(f"{name} must be {accepted}; got {value!r}")


def _positive(name: str, value: Any, *, zero: bool = False) -> float:
    real = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    ok = real and math.isfinite(value) and (value >= 0 if zero else value > 0)
    _check(name, value, ok, "a finite number >= 0" if zero else "a finite number > 0")
    return float(value)


def _prepare_step(step: Step, dtype: torch.dtype, device: torch.device) -> tuple[Step, str]:
    """A bound method of an ``nn.Module`` (or a module) runs on a cast deep copy of its owner."""
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be torch.float32 or torch.float64; got {dtype!r}")
    if not callable(step):
        raise TypeError(f"step must be a callable step(h, x) -> h_next; got {type(step).__name__}")
    owner = getattr(step, "__self__", None)
    if isinstance(owner, nn.Module) or isinstance(step, nn.Module):
        module = copy.deepcopy(owner if isinstance(owner, nn.Module) else step)
        module = module.to(device=device, dtype=dtype).requires_grad_(False).eval()
        name = type(module).__name__
        if isinstance(step, nn.Module):
            return module, name
        return getattr(module, step.__name__), f"{name}.{step.__name__}"
    return step, getattr(step, "__qualname__", type(step).__name__)


def _as_tensor(name: str, value: Any, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        t = value.detach().to(device=device, dtype=dtype)
    else:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{name} must be an array of numbers; got {type(value).__name__}"
            ) from None
        t = torch.as_tensor(arr, dtype=dtype, device=device)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must hold finite numbers only (it has NaN or inf)")
    return t


def _inputs(inputs: Any, b: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor | None:
    if inputs is None:
        return None
    x = _as_tensor("inputs", inputs, dtype, device)
    if x.ndim == 1:
        return x.expand(b, -1).contiguous()
    if x.ndim == 2 and x.shape[0] == b:
        return x.contiguous()
    raise ValueError(
        f"inputs must be None, one input [I] or one per initial state [{b}, I]; "
        f"got shape {tuple(x.shape)}"
    )


def _call(step: Step, h: torch.Tensor, x: torch.Tensor | None) -> torch.Tensor:
    out = step(h, x)
    if not isinstance(out, torch.Tensor) or out.shape != h.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"step(h, x) must return a tensor shaped like h {tuple(h.shape)}; got {got}"
        )
    return out


def _first_call(step: Step, h: torch.Tensor, x: torch.Tensor | None) -> None:
    try:
        with torch.no_grad():
            _call(step, h[:1], None if x is None else x[:1])
    except (TypeError, AttributeError, RuntimeError) as err:
        if type(err) not in (TypeError, AttributeError, RuntimeError):
            raise
        hint = (
            " (inputs=None calls step(h, None): pass inputs, e.g. zeros of the input size, "
            "for a model that needs one)"
            if x is None
            else ""
        )
        raise type(err)(f"step(h, x) failed on the initial states{hint}: {err}") from err


def _q(step: Step, h: torch.Tensor, x: torch.Tensor | None) -> torch.Tensor:
    return 0.5 * (_call(step, h, x) - h).pow(2).sum(-1)


def _jacobians(
    step: Step, h: torch.Tensor, x: torch.Tensor | None, *, wrt: str = "h"
) -> torch.Tensor:
    """Per-row Jacobians ``[B, N, N]`` (``wrt="h"``) or ``[B, N, I]`` (``wrt="x"``).

    Rows are independent, so the Jacobian of ``Σ_b F(h)_b`` with respect to ``h [B, ·]``
    holds every row's Jacobian; chunks of rows bound the memory.
    """
    h = h.detach()
    x = None if x is None else x.detach()
    n = h.shape[1]
    width = n if wrt == "h" else x.shape[1]
    chunk = max(1, _JAC_ELEMENTS // max(n * width, 1))
    out = []
    for a in range(0, h.shape[0], chunk):
        hc = h[a : a + chunk]
        xc = None if x is None else x[a : a + chunk]
        arg = (hc if wrt == "h" else xc).clone().requires_grad_(True)
        with torch.enable_grad():
            y = (_call(step, arg, xc) if wrt == "h" else _call(step, hc, arg)).sum(0)
            eye = torch.eye(n, dtype=y.dtype, device=y.device)
            try:  # all N vector-Jacobian products at once (vmap over the cotangents)
                (jac,) = torch.autograd.grad(y, arg, eye, retain_graph=True, is_grads_batched=True)
            except RuntimeError:  # an op without a batching rule: one backward pass per unit
                rows = [torch.autograd.grad(y[i], arg, retain_graph=True)[0] for i in range(n)]
                jac = torch.stack(rows)  # [N, c, ·]
        out.append(jac.permute(1, 0, 2))
    return torch.cat(out)


def _polish(
    step: Step, h: torch.Tensor, x: torch.Tensor | None, q: torch.Tensor, n_newton: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched Levenberg–Marquardt on the residual ``F(h) − h``; a step is kept where q falls."""
    h, q = h.clone(), q.clone()
    b, n = h.shape
    eye = torch.eye(n, dtype=h.dtype, device=h.device)
    mu = torch.full((b,), 1e-4, dtype=h.dtype, device=h.device)
    for _ in range(n_newton):
        floor = 1e-28 * (1.0 + h.pow(2).sum(-1))
        active = torch.isfinite(q) & (q > floor) & (mu < 1e8)
        if not bool(active.any()):
            break
        idx = active.nonzero().squeeze(1)
        ha, xa = h[idx], None if x is None else x[idx]
        with torch.no_grad():
            r = _call(step, ha, xa) - ha
        a = _jacobians(step, ha, xa) - eye
        ata = a.mT @ a
        scale = ata.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-12)
        delta, info = torch.linalg.solve_ex(
            ata + (mu[idx] * scale)[:, None, None] * eye, -(a.mT @ r.unsqueeze(-1))
        )
        h_new = ha + delta.squeeze(-1)
        with torch.no_grad():
            q_new = _q(step, h_new, xa)
        better = (info == 0) & torch.isfinite(q_new) & (q_new < q[idx])
        h[idx[better]], q[idx[better]] = h_new[better], q_new[better]
        mu[idx] = torch.where(better, mu[idx] / 10, mu[idx] * 10)
    return h, q


def _minimise(
    step: Step,
    h0: torch.Tensor,
    x: torch.Tensor | None,
    *,
    n_iter: int,
    lr: float,
    tol_q: float,
    quiet: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Adam on Σ q over all candidates (each q depends on its own row only).

    Written out (β = 0.9, 0.999) rather than ``torch.optim.Adam``, whose first step imports
    torch's compiler stack (seconds). Rows whose gradient is not finite are frozen.
    """
    h = h0.clone()
    m, v = torch.zeros_like(h), torch.zeros_like(h)
    b1, b2, eps = 0.9, 0.999, 1e-8
    bar = tqdm(total=n_iter, desc="fixed points", disable=quiet_mode(quiet), leave=False)
    with bar:
        for it in range(1, n_iter + 1):
            hg = h.detach().requires_grad_(True)
            with torch.enable_grad():
                q = _q(step, hg, x)
                (grad,) = torch.autograd.grad(q.sum(), hg)
            with torch.no_grad():
                q = q.detach()
                grad = torch.where(torch.isfinite(grad).all(-1, keepdim=True), grad, 0.0)
                m.mul_(b1).add_(grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
                rate = lr * 0.01 ** ((it - 1) / max(n_iter - 1, 1))  # exponential decay to lr/100
                rate = rate * math.sqrt(1 - b2**it) / (1 - b1**it)
                h = h - rate * m / (v.sqrt() + eps)
            if it % 50 == 0 or it == n_iter:
                bar.update(it - bar.n)
                finite = q[torch.isfinite(q)]
                if finite.numel():
                    bar.set_postfix(q_median=f"{finite.median().item():.2e}")
                if finite.numel() == q.numel() and bool((finite < tol_q).all()):
                    break
    with torch.no_grad():
        return h, _q(step, h, x)


def _dedupe(state: np.ndarray, q: np.ndarray, group: np.ndarray, tol: float) -> np.ndarray:
    """Indices of kept points: repeatedly keep the lowest-q point, drop all within ``tol`` of it."""
    order = np.argsort(q, kind="stable")
    remaining = np.ones(len(q), dtype=bool)
    keep = []
    for i in order:
        if not remaining[i]:
            continue
        keep.append(i)
        near = np.linalg.norm(state - state[i], axis=1) <= tol
        remaining &= ~(near & (group == group[i]))
    return np.asarray(keep, dtype=np.int64)


def _eig_sorted(jac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues ``[..., N]`` and right eigenvectors ``[..., N, N]`` sorted by |λ| descending."""
    lam, vec = np.linalg.eig(jac)
    order = np.argsort(-np.abs(lam), axis=-1, kind="stable")
    lam = np.take_along_axis(lam, order, axis=-1)
    vec = np.take_along_axis(vec, order[..., None, :], axis=-1)
    return lam.astype(np.complex128), vec.astype(np.complex128)


def classify_stability(eigenvalues: np.ndarray, marginal_tol: float = 1e-3) -> np.ndarray:
    """Stability of fixed points of a discrete-time map from eigenvalues ``[K, N]``.

    ``marginal`` if any ``||λ| − 1| <= marginal_tol``; else ``stable`` if all ``|λ| < 1``,
    ``unstable`` (a source) if all ``|λ| > 1``, and ``saddle`` otherwise.

    Examples
    --------
    >>> classify_stability(np.array([[0.5, 0.1], [2.0, 0.5], [3.0, 1.5], [1.0, 0.2]])).tolist()
    ['stable', 'saddle', 'unstable', 'marginal']
    """
    mag = np.abs(np.atleast_2d(eigenvalues))
    out = np.full(mag.shape[0], "saddle", dtype="<U8")
    out[(mag < 1).all(-1)] = "stable"
    out[(mag > 1).all(-1)] = "unstable"
    out[(np.abs(mag - 1) <= marginal_tol).any(-1)] = "marginal"
    return out


def _time_constants(lam: np.ndarray, dt: float) -> np.ndarray:
    """``−dt / log|λ|``: decay time (> 0) for |λ| < 1, growth time (< 0) for |λ| > 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log = np.log(np.abs(lam))
        return np.where(log == 0, np.inf, -dt / np.where(log == 0, 1.0, log))


def _module_dt(step: Any) -> float | None:
    owner = getattr(step, "__self__", step)
    dt = getattr(owner, "dt", None) if isinstance(owner, nn.Module) else None
    return float(dt) if isinstance(dt, int | float) and dt > 0 else None


# ----------------------------------------------------------------------------- public API


def sample_states(
    ds: xr.Dataset,
    n: int,
    *,
    seed: int = 0,
    noise_scale: float = 0.0,
    variable: str = "state",
) -> np.ndarray:
    """Draw ``n`` states from trajectories, on valid steps only, as starting points.

    Parameters
    ----------
    ds : xarray.Dataset
        Trajectories with ``state (trial, time, unit)`` (and ``valid (trial, time)``).
    n : int
        Number of states; drawn without replacement when there are enough valid steps.
    seed : int, default 0
    noise_scale : float, default 0.0
        Standard deviation of Gaussian noise added to every coordinate.
    variable : str, default "state"

    Returns
    -------
    numpy.ndarray
        ``[n, N]`` float64.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"state": (("trial", "time", "unit"), np.ones((2, 5, 3)))})
    >>> sample_states(ds, 4, seed=0, noise_scale=0.1).shape
    (4, 3)
    """
    if variable not in ds:
        raise KeyError(f"variable {variable!r} not in dataset; it has {sorted(ds.data_vars)}")
    _check("n", n, isinstance(n, int | np.integer) and n > 0, "a positive integer")
    noise_scale = _positive("noise_scale", noise_scale, zero=True)
    x = np.asarray(ds[variable].transpose("trial", "time", "unit").values, dtype=np.float64)
    keep = (
        np.asarray(ds["valid"].transpose("trial", "time").values, dtype=bool)
        if "valid" in ds
        else np.ones(x.shape[:2], dtype=bool)
    )
    pool = x[keep]
    if len(pool) == 0:
        raise ValueError("the dataset has no valid steps to sample states from")
    rng = np.random.default_rng(seed)
    out = pool[rng.choice(len(pool), size=int(n), replace=int(n) > len(pool))]
    if noise_scale > 0:
        out = out + rng.normal(0.0, noise_scale, size=out.shape)
    return out


def compute_fixed_points(
    step: Step,
    initial_states: Any,
    inputs: Any = None,
    *,
    n_iter: int = 1000,
    lr: float = 0.03,
    n_newton: int = 50,
    tol_q: float = 1e-12,
    q_slow: float = 1e-6,
    dedupe_tol: float = 1e-3,
    outlier_tol: float | None = 10.0,
    marginal_tol: float = 1e-3,
    dt: float | None = None,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "auto",
    seed: int = 0,
    noise_scale: float = 0.0,
    quiet: bool = False,
) -> xr.Dataset:
    """Fixed and slow points of ``h ← step(h, x)``, their Jacobians, eigenvalues and stability.

    Minimises ``q = ½‖F(h, x) − h‖²`` from every initial state at once: ``n_iter`` Adam steps
    (learning rate ``lr`` decaying exponentially to ``lr / 100``) and then up to ``n_newton``
    batched Levenberg–Marquardt steps. Candidates are then filtered and merged:

    1. ``q >= q_slow`` (or non-finite): not converged, dropped;
    2. outliers, farther from the centroid of the initial states than ``outlier_tol`` times
       their mean distance from it (points run off to infinity), dropped (never when all
       initial states coincide: there is no scale to judge by);
    3. ``q < tol_q``: ``kind="fixed"``; ``tol_q <= q < q_slow``: ``kind="slow"`` (slow points);
    4. duplicates within Euclidean distance ``dedupe_tol`` (and with the same input) merged,
       keeping the lowest q.

    Parameters
    ----------
    step : callable
        ``step(h [B, N], x [B, I] or None) -> h_next [B, N]``, differentiable, acting on each
        row independently. A bound method of a ``torch.nn.Module`` (``net.step``) or a module
        runs on a deep copy cast to ``dtype`` and moved to ``device``, so a float32 model gives
        float64 fixed points and is left untouched. Any other callable must accept ``dtype``.
    initial_states : array_like or torch.Tensor
        ``[B, N]`` starting states, e.g. from :func:`sample_states`.
    inputs : array_like, optional
        ``None`` (autonomous: ``step(h, None)``), one constant input ``[I]``, or ``[B, I]``.
    n_iter, lr : int, float
        Adam steps and initial learning rate.
    n_newton : int, default 50
        Maximum Levenberg–Marquardt polishing steps (0 to skip).
    tol_q, q_slow : float
        Fixed-point and slow-point thresholds on q.
    dedupe_tol : float, default 1e-3
        Distance (state units) below which two points are the same.
    outlier_tol : float or None, default 10.0
        Outlier distance in units of the initial states' mean distance from their centroid
        (``None``: keep all).
    marginal_tol : float, default 1e-3
        ``||λ| − 1|`` at or below which a direction counts as marginal.
    dt : float, optional
        Time step (ms) for ``time_constant``; by default the module's ``dt`` when ``step``
        belongs to one.
    dtype : torch.dtype, default torch.float64
    device : str, default "auto"
    seed, noise_scale : int, float
        Gaussian noise of this standard deviation is added to the initial states (seeded).
    quiet : bool
        No progress bar (always quiet on CI).

    Returns
    -------
    xarray.Dataset
        Dims ``fixed_point, unit, unit_from, eigen`` (and ``input_channel``), sorted by q.
        ``state (fixed_point, unit)``, ``q``, ``kind`` ("fixed"/"slow"), ``stability``
        ("stable", "unstable", "saddle", "marginal"), ``n_unstable`` (number of |λ| > 1),
        ``jacobian (fixed_point, unit, unit_from)`` = dF/dh, ``eigenvalues (fixed_point, eigen)``
        (complex, sorted by |λ| descending) with ``eigenvalue_real``, ``eigenvalue_imag`` and
        ``eigenvalue_abs`` (for saving: drop the complex ``eigenvalues`` first); when inputs
        are given ``input (fixed_point, input_channel)`` and ``input_jacobian`` = dF/dx;
        ``time_constant (fixed_point, eigen)`` = −dt / log|λ| when ``dt`` is known (> 0 decay,
        < 0 growth). Attrs count what was dropped (``n_nonconverged``, ``n_outliers``,
        ``n_duplicates``) and record the settings.

    Examples
    --------
    >>> import numpy as np, torch
    >>> step = lambda h, x: torch.tanh(2.0 * h)
    >>> fps = compute_fixed_points(step, np.linspace(-1.5, 1.5, 21)[:, None], quiet=True,
    ...                            device="cpu")
    >>> fps = fps.sortby(fps.state.isel(unit=0))
    >>> fps.state.values[:, 0].round(4).tolist(), fps.stability.values.tolist()
    ([-0.9575, 0.0, 0.9575], ['stable', 'unstable', 'stable'])
    """
    dev = resolve_device(device)
    for name, value in (("n_iter", n_iter), ("n_newton", n_newton)):
        ok = isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 0
        _check(name, value, ok, "an integer >= 0")
    lr, tol_q, q_slow = _positive("lr", lr), _positive("tol_q", tol_q), _positive("q_slow", q_slow)
    _check("q_slow", q_slow, q_slow >= tol_q, f"a number >= tol_q ({tol_q})")
    dedupe_tol = _positive("dedupe_tol", dedupe_tol, zero=True)
    marginal_tol = _positive("marginal_tol", marginal_tol, zero=True)
    noise_scale = _positive("noise_scale", noise_scale, zero=True)
    if outlier_tol is not None:
        outlier_tol = _positive("outlier_tol", outlier_tol)
    if dt is not None:
        dt = _positive("dt", dt)
    else:
        dt = _module_dt(step)
    fn, step_name = _prepare_step(step, dtype, dev)

    h0 = _as_tensor("initial_states", initial_states, dtype, dev)
    if h0.ndim != 2 or h0.shape[0] == 0 or h0.shape[1] == 0:
        raise ValueError(
            f"initial_states must be a 2-D [B, N] array (B states of N units); got shape "
            f"{tuple(h0.shape)}"
        )
    if noise_scale > 0:
        rng = np.random.default_rng(seed)
        h0 = h0 + torch.as_tensor(rng.normal(0.0, noise_scale, tuple(h0.shape)), dtype=dtype).to(
            dev
        )
    b, n = h0.shape
    x = _inputs(inputs, b, dtype, dev)
    _first_call(fn, h0, x)

    h, q = _minimise(fn, h0, x, n_iter=int(n_iter), lr=lr, tol_q=tol_q, quiet=quiet)
    if n_newton:
        h, q = _polish(fn, h, x, q, int(n_newton))

    state, qs = h.cpu().numpy().astype(np.float64), q.cpu().numpy().astype(np.float64)
    init = h0.cpu().numpy().astype(np.float64)
    finite = np.isfinite(qs) & np.isfinite(state).all(-1)
    converged = finite & (np.where(finite, qs, np.inf) < q_slow)
    centre = init.mean(0)
    ref = float(np.linalg.norm(init - centre, axis=1).mean())
    dist = np.linalg.norm(np.where(np.isfinite(state), state, 0.0) - centre, axis=1)
    inlier = np.ones(b, bool) if outlier_tol is None or ref == 0 else dist <= outlier_tol * ref
    cand = np.flatnonzero(converged & inlier)
    x_np = None if x is None else x.cpu().numpy().astype(np.float64)
    group = (
        np.zeros(b, np.int64) if x_np is None else np.unique(x_np, axis=0, return_inverse=True)[1]
    )
    kept = cand[_dedupe(state[cand], qs[cand], group[cand].ravel(), dedupe_tol)]
    kept = kept[np.argsort(qs[kept], kind="stable")]

    k = len(kept)
    hk = h[torch.as_tensor(kept, device=dev)]
    xk = None if x is None else x[torch.as_tensor(kept, device=dev)]
    if k:
        jac = _jacobians(fn, hk, xk).cpu().numpy().astype(np.float64)
        lam, _ = _eig_sorted(jac)
    else:
        jac, lam = np.zeros((0, n, n)), np.zeros((0, n), np.complex128)
    data: dict[str, Any] = {
        "state": (("fixed_point", "unit"), state[kept]),
        "q": ("fixed_point", qs[kept]),
        "kind": ("fixed_point", np.where(qs[kept] < tol_q, "fixed", "slow").astype("<U5")),
        "stability": ("fixed_point", classify_stability(lam, marginal_tol)),
        "n_unstable": ("fixed_point", (np.abs(lam) > 1).sum(-1).astype(np.int64)),
        "jacobian": (("fixed_point", "unit", "unit_from"), jac),
        "eigenvalues": (("fixed_point", "eigen"), lam),
        "eigenvalue_real": (("fixed_point", "eigen"), lam.real.copy()),
        "eigenvalue_imag": (("fixed_point", "eigen"), lam.imag.copy()),
        "eigenvalue_abs": (("fixed_point", "eigen"), np.abs(lam)),
    }
    if dt is not None:
        data["time_constant"] = (("fixed_point", "eigen"), _time_constants(lam, dt))
    if x is not None:
        n_in = x.shape[1]
        data["input"] = (("fixed_point", "input_channel"), x_np[kept])
        in_jac = (
            _jacobians(fn, hk, xk, wrt="x").cpu().numpy().astype(np.float64)
            if k
            else np.zeros((0, n, n_in))
        )
        data["input_jacobian"] = (("fixed_point", "unit", "input_channel"), in_jac)
    coords: dict[str, Any] = {
        "fixed_point": np.arange(k),
        "unit": np.arange(n),
        "unit_from": np.arange(n),
        "eigen": np.arange(n),
    }
    if x is not None:
        coords["input_channel"] = np.arange(x.shape[1])
    attrs = {
        "step": step_name,
        "n_initial": b,
        "n_nonconverged": int((~converged).sum()),
        "n_outliers": int((converged & ~inlier).sum()),
        "n_duplicates": int(len(cand) - k),
        "n_iter": int(n_iter),
        "n_newton": int(n_newton),
        "lr": lr,
        "tol_q": tol_q,
        "q_slow": q_slow,
        "dedupe_tol": dedupe_tol,
        "outlier_tol": outlier_tol,
        "marginal_tol": marginal_tol,
        "dt": dt,
        "dtype": _DTYPES[dtype],
        "device": str(dev),
        "seed": int(seed),
        "noise_scale": noise_scale,
    }
    attrs = {key: _encode_attr(v) for key, v in attrs.items() if v is not None}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def compute_linearisation(
    step: Step,
    h: Any,
    x: Any = None,
    *,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "auto",
) -> xr.Dataset:
    """Linearisation of ``h ← step(h, x)`` around one state: Jacobians and eigen-decomposition.

    ``F(h + δh, x + δx) ≈ F(h, x) + J δh + J_x δx``.

    Parameters
    ----------
    step : callable
        As in :func:`compute_fixed_points` (a module's bound method runs on a cast deep copy).
    h : array_like
        The state ``[N]``.
    x : array_like, optional
        The input ``[I]``; ``None`` calls ``step(h, None)``.
    dtype : torch.dtype, default torch.float64
    device : str, default "auto"

    Returns
    -------
    xarray.Dataset
        ``jacobian (unit, unit_from)`` = dF/dh, ``input_jacobian (unit, input_channel)`` = dF/dx
        (when ``x`` is given), ``eigenvalues (eigen)`` (complex, by |λ| descending) with
        ``eigenvalue_real``, ``eigenvalue_imag``, ``eigenvalue_abs``, right ``eigenvectors
        (unit, eigen)`` (complex, unit norm), ``state (unit)``, ``input (input_channel)``, and
        ``q = ½‖F(h, x) − h‖²``.

    Examples
    --------
    >>> import torch
    >>> A = torch.tensor([[0.5, 1.0], [0.0, 2.0]], dtype=torch.float64)
    >>> lin = compute_linearisation(lambda h, x: h @ A.T, [0.0, 0.0], device="cpu")
    >>> lin.eigenvalue_real.values.tolist()
    [2.0, 0.5]
    """
    dev = resolve_device(device)
    fn, step_name = _prepare_step(step, dtype, dev)
    ht = _as_tensor("h", h, dtype, dev)
    if ht.ndim == 2 and ht.shape[0] == 1:
        ht = ht[0]
    if ht.ndim != 1 or ht.numel() == 0:
        raise ValueError(f"h must be one state [N] (or [1, N]); got shape {tuple(ht.shape)}")
    xt = None
    if x is not None:
        xt = _as_tensor("x", x, dtype, dev)
        if xt.ndim == 2 and xt.shape[0] == 1:
            xt = xt[0]
        if xt.ndim != 1:
            raise ValueError(f"x must be one input [I] (or [1, I]); got shape {tuple(xt.shape)}")
        xt = xt[None]
    hb = ht[None]
    _first_call(fn, hb, xt)
    jac = _jacobians(fn, hb, xt)[0].cpu().numpy().astype(np.float64)
    with torch.no_grad():
        q = float(_q(fn, hb, xt)[0])
    lam, vec = _eig_sorted(jac)
    n = jac.shape[0]
    data: dict[str, Any] = {
        "jacobian": (("unit", "unit_from"), jac),
        "eigenvalues": ("eigen", lam),
        "eigenvalue_real": ("eigen", lam.real.copy()),
        "eigenvalue_imag": ("eigen", lam.imag.copy()),
        "eigenvalue_abs": ("eigen", np.abs(lam)),
        "eigenvectors": (("unit", "eigen"), vec),
        "state": ("unit", ht.cpu().numpy().astype(np.float64)),
    }
    coords: dict[str, Any] = {
        "unit": np.arange(n),
        "unit_from": np.arange(n),
        "eigen": np.arange(n),
    }
    if xt is not None:
        in_jac = _jacobians(fn, hb, xt, wrt="x")[0].cpu().numpy().astype(np.float64)
        data["input_jacobian"] = (("unit", "input_channel"), in_jac)
        data["input"] = ("input_channel", xt[0].cpu().numpy().astype(np.float64))
        coords["input_channel"] = np.arange(in_jac.shape[1])
    data["q"] = ((), q)
    attrs = {"step": step_name, "dtype": _DTYPES[dtype], "device": str(dev)}
    return xr.Dataset(data, coords=coords, attrs=attrs)
