"""Linearisation of a one-step map: per-row Jacobians and their eigendecomposition.

``F(h + δh, x + δx) ≈ F(h, x) + J δh + J_x δx`` for any differentiable ``step(h, x) -> h_next``
acting on each row of a batch ``[B, N]`` independently. The fixed-point finder
(``_fixed_points``) builds on these helpers: its Newton polish needs ``J``, and its results
report eigenvalues, time constants and the speed ``q``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import xarray as xr

from neurosim import resolve_device

from ._stepfn import (
    FLOAT32_64,
    Step,
    as_tensor,
    call_step,
    check_dtype,
    dtype_name,
    first_call,
    prepare_step,
)

_JAC_ELEMENTS = 1 << 24  # Jacobian entries per chunk (128 MiB in float64)
FINITE = "hold finite numbers only"  # the wording of the finiteness requirement


def q_value(step: Step, h: torch.Tensor, x: torch.Tensor | None) -> torch.Tensor:
    """The speed ``q = ½‖F(h, x) − h‖²`` of every row."""
    return 0.5 * (call_step(step, h, x) - h).pow(2).sum(-1)


def jacobians(
    step: Step, h: torch.Tensor, x: torch.Tensor | None, *, wrt: str = "h"
) -> torch.Tensor:
    """Per-row Jacobians ``[B, N, N]`` (``wrt="h"``) or ``[B, N, I]`` (``wrt="x"``); B may be 0.

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
            y = (call_step(step, arg, xc) if wrt == "h" else call_step(step, hc, arg)).sum(0)
            eye = torch.eye(n, dtype=y.dtype, device=y.device)
            try:  # all N vector-Jacobian products at once (vmap over the cotangents)
                (jac,) = torch.autograd.grad(y, arg, eye, retain_graph=True, is_grads_batched=True)
            except RuntimeError:  # an op without a batching rule: one backward pass per unit
                rows = [torch.autograd.grad(y[i], arg, retain_graph=True)[0] for i in range(n)]
                jac = torch.stack(rows)  # [N, c, ·]
        out.append(jac.permute(1, 0, 2))
    return torch.cat(out) if out else h.new_zeros((0, n, width))


def eig_sorted(jac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues ``[..., N]`` and right eigenvectors ``[..., N, N]`` sorted by |λ| descending."""
    lam, vec = np.linalg.eig(jac)
    order = np.argsort(-np.abs(lam), axis=-1, kind="stable")
    lam = np.take_along_axis(lam, order, axis=-1)
    vec = np.take_along_axis(vec, order[..., None, :], axis=-1)
    return lam.astype(np.complex128), vec.astype(np.complex128)


def eigen_vars(lam: np.ndarray, *lead: str) -> dict[str, Any]:
    """Dataset variables of eigenvalues ``lam [..., eigen]``: complex, real, imag, abs parts."""
    dims = (*lead, "eigen")
    return {
        "eigenvalues": (dims, lam),
        "eigenvalue_real": (dims, lam.real.copy()),
        "eigenvalue_imag": (dims, lam.imag.copy()),
        "eigenvalue_abs": (dims, np.abs(lam)),
    }


def time_constants(lam: np.ndarray, dt: float) -> np.ndarray:
    """``−dt / log|λ|``: decay time (> 0) for |λ| < 1, growth time (< 0) for |λ| > 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log = np.log(np.abs(lam))
        return np.where(log == 0, np.inf, -dt / np.where(log == 0, 1.0, log))


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
    check_dtype(dtype, FLOAT32_64)
    fn, step_name = prepare_step(step, dtype, dev)
    ht = as_tensor("h", h, dtype, dev, finite=FINITE)
    if ht.ndim == 2 and ht.shape[0] == 1:
        ht = ht[0]
    if ht.ndim != 1 or ht.numel() == 0:
        raise ValueError(f"h must be one state [N] (or [1, N]); got shape {tuple(ht.shape)}")
    xt = None
    if x is not None:
        xt = as_tensor("x", x, dtype, dev, finite=FINITE)
        if xt.ndim == 2 and xt.shape[0] == 1:
            xt = xt[0]
        if xt.ndim != 1:
            raise ValueError(f"x must be one input [I] (or [1, I]); got shape {tuple(xt.shape)}")
        xt = xt[None]
    hb = ht[None]
    first_call(fn, hb, xt, strict=False)
    jac = jacobians(fn, hb, xt)[0].cpu().numpy().astype(np.float64)
    with torch.no_grad():
        q = float(q_value(fn, hb, xt)[0])
    lam, vec = eig_sorted(jac)
    n = jac.shape[0]
    data: dict[str, Any] = {
        "jacobian": (("unit", "unit_from"), jac),
        **eigen_vars(lam),
        "eigenvectors": (("unit", "eigen"), vec),
        "state": ("unit", ht.cpu().numpy().astype(np.float64)),
    }
    coords: dict[str, Any] = {
        "unit": np.arange(n),
        "unit_from": np.arange(n),
        "eigen": np.arange(n),
    }
    if xt is not None:
        in_jac = jacobians(fn, hb, xt, wrt="x")[0].cpu().numpy().astype(np.float64)
        data["input_jacobian"] = (("unit", "input_channel"), in_jac)
        data["input"] = ("input_channel", xt[0].cpu().numpy().astype(np.float64))
        coords["input_channel"] = np.arange(in_jac.shape[1])
    data["q"] = ((), q)
    attrs = {"step": step_name, "dtype": dtype_name(dtype), "device": str(dev)}
    return xr.Dataset(data, coords=coords, attrs=attrs)
