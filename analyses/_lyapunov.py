"""Lyapunov spectra of any differentiable step map, by tangent-space QR (Benettin).

``compute_lyapunov_spectrum`` propagates ``k`` orthonormal tangent vectors with the
Jacobian of the step (``Q ← J Q``, batched over trajectories, with Jacobian–vector
products so ``J`` is never formed) and re-orthonormalises them by QR
with a positive diagonal; the exponents are the mean log growth ``Σ log R_ii`` per
unit time. The shared argument checks and statistics here also serve the direct
two-trajectory estimate in ``_lyapunov_direct``; the step plumbing (argument validators,
casting a module's step, arrays to tensors, the checked first call) is in ``_stepfn``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import xarray as xr

from neurosim import resolve_device

from ._stepfn import (
    Step,
    check_dtype,
    dtype_name,
    first_call,
    int_arg,
    positive,
    prepare_run,
    prepare_step,
    progress,
)

# Above this much tangent work per step (k·B·N²), vmap the JVP over the k columns
# (the primal is evaluated once); below it per-op overheads dominate and reverse-over-
# reverse with the k columns folded into the batch is fastest (torch 2.13's forward AD
# of a broadcasting mul/add/div costs ~0.2 ms per op through a Python decomposition).
_VMAP_MIN_WORK = 2**21


# ------------------------------------------------------------------- arguments


def check_run_args(
    dtype: Any,
    device: Any,
    n_steps: Any,
    warmup: Any,
    every: tuple[str, Any],
    dt: Any,
    seed: Any,
) -> tuple[torch.dtype, torch.device, int, int, int, float, int]:
    """The arguments both estimates share, checked in this order (``every``: name, value)."""
    return (
        check_dtype(dtype),
        resolve_device(device),
        int_arg("n_steps", n_steps, 1),
        int_arg("warmup", warmup, 0),
        int_arg(*every, 1),
        positive("dt", dt),
        int_arg("seed", seed, 0),
    )


# ------------------------------------------------------------------ tangent maps


def _jvp_vmap(step: Step, h: torch.Tensor, x: torch.Tensor | None, q: torch.Tensor) -> Any:
    def f(s: torch.Tensor) -> torch.Tensor:
        return step(s, x)

    def col(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.func.jvp(f, (h,), (v,))

    return torch.func.vmap(col, in_dims=2, out_dims=(None, 2))(q)


def _fold(h: torch.Tensor, x: torch.Tensor | None, q: torch.Tensor) -> Any:
    b, n, k = q.shape
    xs = None if x is None else x.repeat(k, 1)
    return h.repeat(k, 1), xs, q.permute(2, 0, 1).reshape(k * b, n)


def _unfold(out: torch.Tensor, tangent: torch.Tensor, b: int, k: int) -> Any:
    return out[:b], tangent.reshape(k, b, -1).permute(1, 2, 0)


def _jvp_dual(step: Step, h: torch.Tensor, x: torch.Tensor | None, q: torch.Tensor) -> Any:
    import torch.autograd.forward_ad as fwad

    hs, xs, v = _fold(h, x, q)
    with fwad.dual_level():
        out, tangent = fwad.unpack_dual(step(fwad.make_dual(hs, v), xs))
    if tangent is None:
        raise RuntimeError("the output of step carries no tangent: it does not depend on h")
    return _unfold(out, tangent, q.shape[0], q.shape[2])


def _jvp_double_backward(
    step: Step, h: torch.Tensor, x: torch.Tensor | None, q: torch.Tensor
) -> Any:
    hs, xs, v = _fold(h, x, q)
    with torch.enable_grad():
        hs.requires_grad_(True)
        out = step(hs, xs)
        u = torch.zeros_like(out, requires_grad=True)
        (g,) = torch.autograd.grad(out, hs, u, create_graph=True)  # g = Jᵀu, linear in u
        (tangent,) = torch.autograd.grad(g, u, v)  # ∂(vᵀJᵀu)/∂u = J v
    return _unfold(out.detach(), tangent, q.shape[0], q.shape[2])


_MODES = {"vmap": _jvp_vmap, "dual": _jvp_dual, "double_backward": _jvp_double_backward}


class TangentMap:
    """``(h, x, Q) -> (step(h, x), J Q)`` with ``J = ∂step/∂h`` per trajectory.

    The first call picks the backend: ``torch.func.jvp`` vmapped over the columns
    for large problems, reverse-over-reverse (double backward) with the columns
    folded into the batch for small ones; the others, and forward-mode dual tensors,
    are fallbacks (in that order) for steps that a backend cannot trace.
    """

    def __init__(self, step: Step, work: int) -> None:
        self.step = step
        big = work >= _VMAP_MIN_WORK
        self.order = (
            ["vmap", "dual", "double_backward"] if big else ["double_backward", "vmap", "dual"]
        )
        self.mode: str | None = None

    def __call__(self, h: torch.Tensor, x: torch.Tensor | None, q: torch.Tensor) -> Any:
        if self.mode is not None:
            return _MODES[self.mode](self.step, h, x, q)
        errors = []
        for mode in self.order:
            try:
                out = _MODES[mode](self.step, h, x, q)
            except Exception as exc:  # noqa: BLE001 - try the next backend, report all
                errors.append(
                    f"  {mode}: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
                )
                continue
            self.mode = mode
            return out
        raise RuntimeError(
            "could not differentiate step(h, x) with respect to h by any backend:\n"
            + "\n".join(errors)
            + "\nstep must be a torch function of h, without in-place writes to h, "
            ".item()/.numpy() calls or non-torch code on the state, acting row by row "
            "on the batch."
        )


def qr_positive(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reduced QR of ``m [..., N, k]`` with ``R_ii >= 0``; returns ``Q`` and ``log R_ii``."""
    q, r = torch.linalg.qr(m)
    d = torch.diagonal(r, dim1=-2, dim2=-1)
    sign = 1 - 2 * (d < 0).to(d.dtype)
    return q * sign.unsqueeze(-2), torch.log(d.abs())


# ------------------------------------------------------------------- statistics


def mean_sem(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over axis 0; the SEM is NaN for one trajectory or non-finite data."""
    b = values.shape[0]
    with np.errstate(all="ignore"):
        mean = values.mean(0)
        sem = values.std(0, ddof=1) / math.sqrt(b) if b > 1 else np.full(mean.shape, np.nan)
    ok = np.isfinite(values).all(0)
    return mean, np.where(ok, sem, np.nan)


def kaplan_yorke(spectrum: np.ndarray, complete: bool) -> tuple[float, bool]:
    """Kaplan–Yorke dimension ``j + Σ_{i≤j} λ_i / |λ_{j+1}|`` (exponents sorted descending).

    ``j`` is the largest index with ``Σ_{i≤j} λ_i >= 0``. Returns ``(D, truncated)``:
    ``D = 0`` when ``λ_1 < 0``; when every partial sum is ``>= 0``, ``D`` is the number
    of exponents, flagged ``truncated`` (a lower bound) unless the spectrum is complete.
    """
    lam = -np.sort(-np.asarray(spectrum, dtype=np.float64))
    if lam[0] < 0:
        return 0.0, False
    csum = np.cumsum(lam)
    j = int(np.count_nonzero(csum >= 0))  # a prefix: the sums fall once λ < 0
    if j == lam.size:
        return float(j), not complete
    return float(j + csum[j - 1] / abs(lam[j])), False


# ------------------------------------------------------------------- public API


def compute_lyapunov_spectrum(
    step: Step,
    h0: Any,
    inputs: Any = None,
    *,
    n_exponents: int | None = None,
    n_steps: int,
    warmup: int,
    qr_every: int = 1,
    dt: float = 1.0,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "auto",
    trace_every: int | None = None,
    quiet: bool = False,
    seed: int = 0,
) -> xr.Dataset:
    """Lyapunov spectrum (all or the ``k`` largest exponents) of a step map.

    Benettin's algorithm: ``k`` orthonormal tangent vectors ``Q [B, N, k]`` evolve
    with the Jacobian ``J_t = ∂h_{t+1}/∂h_t`` of the step (``Q ← J_t Q``, not ``J_tᵀ``),
    computed as ``k`` Jacobian–vector products per step (``J`` is never formed:
    ``O(B·N²·k)`` for a dense network; backend in ``attrs["jvp_backend"]``); every ``qr_every`` steps ``Q, R =
    qr(Q)`` with ``R_ii > 0`` and ``log R_ii`` is summed. After ``warmup`` discarded
    steps (state and vectors evolve), ``λ_i = Σ log R_ii / (n_steps·dt)``.

    Parameters
    ----------
    step : callable
        ``step(h, x) -> h_next`` on batched states ``[B, N]`` (``x`` is ``[B, I]``, or
        ``None`` when ``inputs`` is None); any differentiable torch function acting
        row by row, e.g. a model's ``net.step``, a map or an ODE integrator step. A
        bound method of a ``torch.nn.Module`` (or a module, its ``forward`` the step)
        runs on a deep copy of the module cast to ``dtype`` and moved to ``device``
        (eval mode), so a float32 model gives a float64 spectrum and is left
        untouched; a plain function must itself accept ``dtype`` tensors on ``device``.
    h0 : array or tensor
        Initial states ``[B, N]`` (B trajectories) or ``[N]``.
    inputs : array or tensor, optional
        ``[B, T, I]`` or ``[T, I]`` (shared) with ``T >= warmup + n_steps``; step ``t``
        gets ``inputs[:, t]`` (warm-up first).
    n_exponents : int, optional
        Number ``k`` of largest exponents (1..N); all ``N`` by default.
    n_steps, warmup : int
        Steps measured, and steps run first and discarded.
    qr_every : int, default 1
        Re-orthonormalise every this many steps (and at the end); exact in exact
        arithmetic, it saves QR time while ``exp((λ_1−λ_k)·qr_every·dt)`` stays small.
    dt : float, default 1.0
        Time per step: exponents are per unit of ``dt`` (``dt=net.dt`` gives 1/ms).
    dtype : torch.dtype, default torch.float64
    device : str or torch.device, default "auto"
        ``"auto"`` is CUDA when present.
    trace_every : int, optional
        Also record the running estimates every this many measured steps.
    quiet : bool, default False
        No progress bar (always quiet when the ``CI`` variable is set).
    seed : int, default 0
        Seeds the random initial tangent vectors ``Q_0``: the positive-diagonal QR
        of ``G [B, N, k]``, whose columns are drawn one by one as
        ``torch.randn(B, N, generator=g, dtype=torch.float64)`` from
        ``g = torch.Generator().manual_seed(seed)``, so the first vectors do not
        depend on ``k`` and a partial spectrum equals the top of the full one.

    Returns
    -------
    xarray.Dataset
        ``exponents (trajectory, exponent)`` in the order of the QR columns
        (``exponent`` = 1..k), which converges to descending order; at finite
        ``n_steps`` nearly equal exponents may come out of order, and
        ``Σ_{i≤j} λ_i`` is always the growth rate of ``j``-volumes, so a partial
        spectrum equals the leading exponents of the full one,
        ``mean (exponent)``, ``sem (exponent)`` (SEM over trajectories; NaN for one
        trajectory), ``kaplan_yorke (trajectory)`` with ``kaplan_yorke_truncated``
        (a lower bound: every partial sum of a partial spectrum is >= 0; the value is
        then ``k``; 0 when ``λ_1 < 0``), ``kaplan_yorke_of_mean`` and
        ``kaplan_yorke_of_mean_truncated`` (scalars, of the mean spectrum),
        ``entropy_rate (trajectory)`` (sum of positive exponents; a lower bound when
        ``λ_k > 0``), and with ``trace_every`` ``trace (trajectory, checkpoint,
        exponent)`` with ``checkpoint`` = steps since warm-up. Attrs: ``dt``,
        ``n_steps``, ``warmup``, ``qr_every``, ``n_exponents``, ``n_units``, ``dtype``,
        ``device``, ``seed``, ``step``, ``jvp_backend``, ``method``. A singular
        Jacobian gives ``λ = -inf``.

    Raises
    ------
    ValueError
        For an argument out of range (the message names it) or non-finite states.
    RuntimeError
        When ``step`` cannot be evaluated or differentiated.

    Examples
    --------
    >>> import torch
    >>> def henon(h, x):  # x' = 1 - 1.4 x² + y, y' = 0.3 x
    ...     return torch.stack([1 - 1.4 * h[:, 0] ** 2 + h[:, 1], 0.3 * h[:, 0]], dim=1)
    >>> ds = compute_lyapunov_spectrum(henon, torch.zeros(4, 2), n_steps=200, warmup=20,
    ...                                device="cpu")
    >>> ds.exponents.dims, round(float(ds["mean"].sum()), 6)  # sum = ln 0.3
    (('trajectory', 'exponent'), -1.203973)
    """
    dtype, dev, n_steps, warmup, qr_every, dt, seed = check_run_args(
        dtype, device, n_steps, warmup, ("qr_every", qr_every), dt, seed
    )
    if trace_every is not None:
        trace_every = int_arg("trace_every", trace_every, 1, n_steps)
    run_step, step_name = prepare_step(step, dtype, dev)
    h, x = prepare_run(h0, inputs, warmup + n_steps, dtype, dev)
    b, n = h.shape
    k = n if n_exponents is None else int_arg("n_exponents", n_exponents, 1, n)
    first_call(run_step, h, None if x is None else x[:, 0], strict=True)

    gen = torch.Generator().manual_seed(seed)
    g = torch.stack([torch.randn(b, n, generator=gen, dtype=torch.float64) for _ in range(k)], 2)
    q, _ = qr_positive(g.to(device=dev, dtype=dtype))
    tangent = TangentMap(run_step, k * b * n * n)
    sums = torch.zeros(b, k, dtype=dtype, device=dev)
    checkpoints: list[int] = []
    if trace_every is not None:
        checkpoints = list(range(trace_every, n_steps + 1, trace_every))
        checkpoints += [] if checkpoints[-1] == n_steps else [n_steps]
    trace = torch.empty(len(checkpoints), b, k, dtype=dtype, device=dev)
    next_cp = 0
    total = warmup + n_steps
    bar, chunk = progress(total, quiet, "lyapunov")
    with torch.no_grad():
        for t in range(total):
            h, q = tangent(h, None if x is None else x[:, t], q)
            if t < warmup:
                if (t + 1) % qr_every == 0 or t + 1 == warmup:
                    q, _ = qr_positive(q)
            else:
                s = t + 1 - warmup
                at_cp = next_cp < len(checkpoints) and s == checkpoints[next_cp]
                if s % qr_every == 0 or s == n_steps or at_cp:
                    q, log_r = qr_positive(q)
                    sums += log_r
                if at_cp:
                    trace[next_cp] = sums / (s * dt)
                    next_cp += 1
            if (t + 1) % chunk == 0 or t + 1 == total:
                bar.update(chunk if (t + 1) % chunk == 0 else (t + 1) % chunk)
    bar.close()

    bad = ~torch.isfinite(h).all(1) | torch.isnan(sums).any(1) | torch.isposinf(sums).any(1)
    if bool(bad.any()):
        raise ValueError(
            f"the states or tangent vectors of trajectories {bad.nonzero().flatten().tolist()} "
            "became non-finite: the step diverges from h0 (or qr_every is too large for "
            "the growth between re-orthonormalisations)"
        )
    exps = sums.cpu().double().numpy() / (n_steps * dt)
    data: dict[str, Any] = summarise_spectrum(exps, complete=k == n)
    if trace_every is not None:
        data["trace"] = (
            ("trajectory", "checkpoint", "exponent"),
            trace.cpu().double().numpy().transpose(1, 0, 2),
        )
    coords = {"trajectory": np.arange(b), "exponent": np.arange(1, k + 1)}
    if trace_every is not None:
        coords["checkpoint"] = np.asarray(checkpoints)
    attrs: dict[str, Any] = {
        "method": "Benettin tangent-space QR (Q <- J Q, positive-diagonal R)",
        "step": step_name,
        "jvp_backend": tangent.mode or "",
        "dt": dt,
        "n_steps": n_steps,
        "warmup": warmup,
        "qr_every": qr_every,
        "n_exponents": k,
        "n_units": n,
        "dtype": dtype_name(dtype),
        "device": str(dev),
        "seed": seed,
    }
    if trace_every is not None:
        attrs["trace_every"] = trace_every
    return xr.Dataset(data, coords=coords, attrs=attrs)


def summarise_spectrum(exps: np.ndarray, complete: bool) -> dict[str, Any]:
    """Dataset variables of a ``[trajectory, exponent]`` spectrum."""
    mean, sem = mean_sem(exps)
    ky = [kaplan_yorke(row, complete) for row in exps]
    ky_mean, ky_mean_trunc = kaplan_yorke(mean, complete)
    return {
        "exponents": (("trajectory", "exponent"), exps),
        "mean": ("exponent", mean),
        "sem": ("exponent", sem),
        "kaplan_yorke": ("trajectory", np.array([v for v, _ in ky])),
        "kaplan_yorke_truncated": ("trajectory", np.array([f for _, f in ky])),
        "kaplan_yorke_of_mean": ((), ky_mean),
        "kaplan_yorke_of_mean_truncated": ((), ky_mean_trunc),
        "entropy_rate": ("trajectory", np.where(exps > 0, exps, 0.0).sum(1)),
    }
