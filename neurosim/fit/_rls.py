"""Recursive least squares / FORCE for data-constrained rate networks (CURBD, Perich et al.).

:class:`RecursiveLeastSquares` keeps weights ``W [n_out, D]`` and the shared inverse correlation
matrix ``P [D, D]`` (``P0·I`` at the start) and updates both from a *block* of ``B`` regressors
per call with the exact Woodbury form, so ``B`` trials stepped in parallel share ``W`` and ``P``::

    K = P Rᵀ,   S = I_B + R K,   G = K S⁻¹ (= P_new Rᵀ),   P ← P − G Kᵀ,   W ← W − Eᵀ Gᵀ

with ``E [B, n_out]`` the a-priori errors. For ``B = 1`` this is the sequential CURBD/FORCE
rule ``k = P r``, ``c = 1/(1 + rᵀk)``, ``P ← P − c k kᵀ``, ``W ← W − c e kᵀ``; both are done
in place (``addr_``/``addmm_``), so a step costs what BLAS does and allocates nothing large.

:func:`force_epoch` runs the network ``h_t = h_{t−1} + α(−h_{t−1} + W [φ(h_{t−1}); x_t; 1] +
u_t)`` over every step of a batch of trials from ``h_0 = φ⁻¹(A_0)`` and, when learning, applies
one RLS update per step. The regressor ``[φ(h); x; 1]`` is augmented with given inputs ``x`` and a
bias so ``W_in`` and ``b`` are learned jointly with ``J``; ``u`` is a fixed drive (e.g. CURBD's
filtered white noise). Errors: ``target="rates"`` compares the rates ``φ(h_t)`` the step reaches
with ``A_t`` (CURBD's ``tanh(JR) − A`` when ``τ = dt``), ``target="currents"`` compares the
drive ``z_t`` with the drive that would put ``h_t`` exactly on ``φ⁻¹(A_t)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from .._train import seeded_torch

Target = Literal["rates", "currents"]
TARGETS = ("rates", "currents")
_EDGE = 5e-4  # φ⁻¹ clips data this fraction of φ's range inside it (tanh: ±0.999, as CURBD)


def _logit(y: torch.Tensor) -> torch.Tensor:
    return torch.log(y) - torch.log1p(-y)


def _softplus_inverse(y: torch.Tensor) -> torch.Tensor:
    return y + torch.log(-torch.expm1(-y))


# name -> (φ, φ⁻¹, lower, upper): activations whose inverse gives h from observed rates
INVERTIBLE: dict[str, tuple[Callable, Callable, float, float]] = {
    "tanh": (torch.tanh, torch.atanh, -1.0, 1.0),
    "sigmoid": (torch.sigmoid, _logit, 0.0, 1.0),
    "softplus": (torch.nn.functional.softplus, _softplus_inverse, 0.0, math.inf),
    "identity": (lambda x: x, lambda y: y, -math.inf, math.inf),
}


def activation_pair(name: str) -> tuple[Callable, Callable]:
    """``(φ, φ⁻¹)`` for an invertible activation; ``φ⁻¹`` clips into the open range first.

    Examples
    --------
    >>> phi, inv = activation_pair("tanh")
    >>> round(float(inv(phi(torch.tensor(0.3)))), 6)
    0.3
    """
    if name not in INVERTIBLE:
        raise ValueError(
            f"activation must be one of {sorted(INVERTIBLE)} (invertible, so that the state can "
            f"start on the data); got {name!r}"
        )
    phi, inv, lo, hi = INVERTIBLE[name]
    span = hi - lo if math.isfinite(hi - lo) else 1.0
    lo_c = lo + _EDGE * span if math.isfinite(lo) else None
    hi_c = hi - _EDGE * span if math.isfinite(hi) else None

    def clipped_inverse(y: torch.Tensor) -> torch.Tensor:
        return inv(y.clamp(lo_c, hi_c)) if lo_c is not None or hi_c is not None else inv(y)

    return phi, clipped_inverse


class RecursiveLeastSquares:
    """Weights ``W [n_out, D]`` and inverse correlation ``P [D, D]`` updated by block RLS.

    Parameters
    ----------
    weights : torch.Tensor
        Initial ``W [n_out, D]``; it is updated in place (its device and dtype are used).
    p0 : float, default 1
        ``P`` starts at ``p0·I`` (CURBD's ``P0``; the inverse of the ridge penalty).

    Examples
    --------
    >>> w = torch.zeros(1, 2, dtype=torch.float64)
    >>> rls = RecursiveLeastSquares(w, p0=1e6)
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    >>> _ = rls.update_linear(x, x @ torch.tensor([[2.0], [-1.0]], dtype=torch.float64))
    >>> [round(v, 4) for v in w.flatten().tolist()]
    [2.0, -1.0]
    """

    def __init__(self, weights: torch.Tensor, *, p0: float = 1.0) -> None:
        if weights.ndim != 2:
            raise ValueError(f"weights must be 2-D [n_out, n_features]; got {tuple(weights.shape)}")
        if not (isinstance(p0, int | float) and math.isfinite(p0) and p0 > 0):
            raise ValueError(f"p0 must be a positive finite number; got {p0!r}")
        self.weights = weights
        d = weights.shape[1]
        self.p = torch.eye(d, dtype=weights.dtype, device=weights.device).mul_(float(p0))
        self._k = torch.empty(d, dtype=weights.dtype, device=weights.device)

    @property
    def n_features(self) -> int:
        """``D``, the length of a regressor."""
        return self.weights.shape[1]

    def update(self, regressors: torch.Tensor, errors: torch.Tensor) -> None:
        """One exact RLS step on regressors ``[B, D]`` with a-priori errors ``[B, n_out]``.

        The errors must be those of the current weights (``W r_b − y_b`` for a linear target);
        for ``B = 1`` this is the sequential update, for ``B > 1`` it equals ``B`` sequential
        updates with the errors recomputed between them.
        """
        r = regressors if regressors.ndim == 2 else regressors[None]
        e = errors if errors.ndim == 2 else errors[None]
        if r.shape[1] != self.n_features or e.shape != (r.shape[0], self.weights.shape[0]):
            raise ValueError(
                f"regressors must be [B, {self.n_features}] and errors [B, "
                f"{self.weights.shape[0]}]; got {tuple(r.shape)} and {tuple(e.shape)}"
            )
        if r.shape[0] == 1:
            k = torch.mv(self.p, r[0], out=self._k)
            c = torch.dot(r[0], k).add_(1.0).reciprocal_()  # stays on the device: no sync
            ck = k * c
            self.p.addr_(ck, k, alpha=-1.0)
            self.weights.addr_(e[0], ck, alpha=-1.0)
            return
        k = torch.mm(self.p, r.t())  # [D, B]
        s = torch.addmm(torch.eye(r.shape[0], dtype=r.dtype, device=r.device), r, k)
        g = torch.cholesky_solve(k.t(), torch.linalg.cholesky(s)).t()  # K S⁻¹ (S symmetric)
        self.p.addmm_(g, k.t(), alpha=-1.0)
        self.weights.addmm_(e.t(), g.t(), alpha=-1.0)

    def update_linear(self, regressors: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Update towards ``targets ≈ regressors Wᵀ``; returns the a-priori errors."""
        r = regressors if regressors.ndim == 2 else regressors[None]
        errors = r @ self.weights.t() - (targets if targets.ndim == 2 else targets[None])
        self.update(r, errors)
        return errors


@dataclass(frozen=True)
class ForceEpoch:
    """What :func:`force_epoch` returns: the run's rates ``φ(h)`` ``[B, T, N]`` and its loss."""

    rates: torch.Tensor
    states: torch.Tensor
    loss: float


def force_epoch(
    rls: RecursiveLeastSquares | None,
    data: torch.Tensor,
    *,
    alpha: float,
    weights: torch.Tensor | None = None,
    inputs: torch.Tensor | None = None,
    drive: torch.Tensor | None = None,
    bias: bool = True,
    activation: str = "tanh",
    target: Target = "rates",
) -> ForceEpoch:
    """Run ``B`` trials in parallel from ``h_0 = φ⁻¹(A_0)``, one RLS update per step.

    Parameters
    ----------
    rls : RecursiveLeastSquares or None
        Learner holding ``W = [J, W_in, b]`` ``[N, N + I + bias]``; ``None`` runs without
        learning using ``weights``.
    data : torch.Tensor
        Target activity ``[B, T, N]`` inside the range of ``φ`` (scaled).
    alpha : float
        ``dt / τ`` in ``(0, 1]``.
    weights : torch.Tensor, optional
        ``W`` when ``rls`` is None.
    inputs : torch.Tensor, optional
        ``[B, T, I]`` inputs whose weights are learned (part of the regressor).
    drive : torch.Tensor, optional
        ``[B, T, N]`` fixed drive added to the total input (not learned).
    bias : bool, default True
        Whether the last column of ``W`` is a learned bias.
    activation : str, default "tanh"
        An invertible activation (see :func:`activation_pair`).
    target : {"rates", "currents"}
        Error of step ``t``, with ``h_t = (1 − α) h_{t−1} + α z_t`` the state the step reaches:
        ``(φ(h_t) − A_t) / α`` (CURBD's ``tanh(JR) − A`` when ``α = 1``), or
        ``(h_t − φ⁻¹(A_t)) / α = z_t − z*_t``, the error of the drive against the drive
        ``z*_t`` that would put ``h_t`` on the data exactly. Dividing by ``α`` makes the
        error that of ``z_t``, the quantity that is linear in ``W``.

    Returns
    -------
    ForceEpoch
        ``rates`` and ``states`` ``[B, T, N]`` (step 0 is the initial state) and ``loss``,
        the mean squared a-priori error over steps ``1..T−1``.

    Examples
    --------
    >>> t = torch.arange(40, dtype=torch.float64)
    >>> a = torch.stack([0.8 * 0.95**t, -0.5 * 0.9**t], -1)[None]  # [1 trial, 40 steps, 2 units]
    >>> rls = RecursiveLeastSquares(torch.zeros(2, 3, dtype=torch.float64))
    >>> losses = [force_epoch(rls, a, alpha=0.5).loss for _ in range(8)]
    >>> free = force_epoch(None, a, alpha=0.5, weights=rls.weights)  # no learning: a free run
    >>> losses[-1] < losses[0] / 10, float((free.rates - a).abs().max()) < 0.05
    (True, True)
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}; got {target!r}")
    if not (0 < alpha <= 1):
        raise ValueError(f"alpha = dt/tau must be in (0, 1]; got {alpha!r}")
    w = rls.weights if rls is not None else weights
    if w is None:
        raise ValueError("give an RLS learner or the weights to run with")
    phi, phi_inv = activation_pair(activation)
    b, t_len, n = data.shape
    n_in = 0 if inputs is None else inputs.shape[2]
    if w.shape != (n, n + n_in + int(bias)):
        raise ValueError(
            f"weights must be [{n}, {n + n_in + int(bias)}] (units + inputs + bias); "
            f"got {tuple(w.shape)}"
        )
    data = data.to(w)
    reg = torch.ones(b, w.shape[1], dtype=w.dtype, device=w.device)  # [φ(h); x; 1]
    h = phi_inv(data[:, 0]).clone()
    states = torch.empty(b, t_len, n, dtype=w.dtype, device=w.device)
    states[:, 0] = h
    sq = torch.zeros((), dtype=w.dtype, device=w.device)
    for t in range(1, t_len):
        reg[:, :n] = phi(h)
        if n_in:
            reg[:, n : n + n_in] = inputs[:, t]
        z = reg @ w.t()
        if drive is not None:
            z += drive[:, t]
        h = h.mul(1.0 - alpha).add_(z, alpha=alpha)
        if target == "rates":
            err = phi(h).sub_(data[:, t]).div_(alpha)
        else:
            err = (h - phi_inv(data[:, t])).div_(alpha)
        states[:, t] = h
        sq += err.square().sum()
        if rls is not None:
            rls.update(reg, err)
    n_err = max(b * (t_len - 1) * n, 1)
    return ForceEpoch(rates=phi(states), states=states, loss=float(sq) / n_err)


def filtered_noise(
    n_steps: int, n_channels: int, *, dt: float, tau: float, generator: torch.Generator
) -> torch.Tensor:
    """CURBD's input: white noise low-pass filtered with time constant ``tau`` (unit SD).

    ``x_t = e^{−dt/τ} x_{t−1} + (1 − e^{−dt/τ}) √(τ/dt) ξ_t``, started from ``x_0 = 0``,
    divided by its stationary SD so that ``amp·x`` has SD ``amp``. Returns ``[T, C]`` float64.

    Examples
    --------
    >>> x = filtered_noise(4000, 3, dt=10.0, tau=100.0, generator=torch.Generator().manual_seed(0))
    >>> tuple(x.shape), 0.8 < float(x[100:].std()) < 1.2
    ((4000, 3), True)
    """
    decay = math.exp(-dt / tau)
    white = torch.randn(n_steps, n_channels, generator=generator, dtype=torch.float64)
    white.mul_((1.0 - decay) * math.sqrt(tau / dt))
    x = torch.zeros(n_steps, n_channels, dtype=torch.float64)
    for t in range(1, n_steps):
        x[t] = decay * x[t - 1] + white[t]
    sd = (1.0 - decay) * math.sqrt(tau / dt) / math.sqrt(1.0 - decay**2)
    return x / sd


def bump_basis(n_steps: int, n_basis: int) -> torch.Tensor:
    """``n_basis`` Gaussian bumps tiling ``n_steps`` (one-hot steps when ``n_basis == n_steps``).

    The fixed inputs of a learned drive ``u_t = W_in b_t``: learning ``W_in`` learns a smooth
    time course per unit. Returns ``[T, K]`` float64.

    Examples
    --------
    >>> bump_basis(5, 5).tolist()[1]
    [0.0, 1.0, 0.0, 0.0, 0.0]
    >>> tuple(bump_basis(100, 10).shape)
    (100, 10)
    """
    if not 1 <= n_basis <= n_steps:
        raise ValueError(f"n_basis must be in 1..{n_steps} (the trial length); got {n_basis!r}")
    if n_basis == n_steps:
        return torch.eye(n_steps, dtype=torch.float64)
    t = torch.arange(n_steps, dtype=torch.float64)[:, None]
    centres = torch.linspace(0, n_steps - 1, n_basis, dtype=torch.float64)[None]
    width = (n_steps - 1) / max(n_basis - 1, 1)
    return torch.exp(-0.5 * ((t - centres) / width) ** 2)


class ForceFitter:
    """FORCE/RLS training of ``W = [J, W_in, b]`` on scaled trials, for ``fit_constrained``.

    ``data [B, T, N]`` (scaled into φ's range) and ``inputs [B, T, I]`` are numpy arrays;
    ``input_mode`` is ``"given"``/``"learned"`` (inputs in the regressor, ``W_in`` learned),
    ``"noise"`` (fixed drive ``noise_amp · x``) or ``"none"``. Each epoch steps the training
    trials in shuffled batches of ``batch_trials`` (all by default), one RLS update per step.
    """

    def __init__(
        self,
        data: Any,
        inputs: Any,
        train_idx: Any,
        *,
        alpha: float,
        activation: str,
        target: Target,
        input_mode: str,
        bias: bool,
        g: float,
        p0: float,
        noise_amp: float,
        batch_trials: int | None,
        seed: int,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        self.data = torch.as_tensor(data, dtype=dtype, device=device)
        self.x = torch.as_tensor(inputs, dtype=dtype, device=device)
        self.train_idx, self.seed = np.asarray(train_idx), seed
        self.batch = batch_trials or len(self.train_idx)
        n, n_in = self.data.shape[2], self.x.shape[2]
        self.learn_inputs = input_mode in ("given", "learned")
        self.kw = {"alpha": alpha, "bias": bias, "activation": activation}
        self.target, self.n, self.n_in = target, n, n_in
        self.w_in_fixed = (
            noise_amp * torch.eye(n) if input_mode == "noise" else torch.zeros(n, n_in)
        )
        j = torch.randn(n, n, generator=seeded_torch(seed, 2), dtype=torch.float64)
        extra = torch.zeros(n, (n_in if self.learn_inputs else 0) + int(bias), dtype=torch.float64)
        w = torch.cat([j.mul_(g / math.sqrt(n)), extra], dim=1).to(device=device, dtype=dtype)
        self.rls = RecursiveLeastSquares(w, p0=p0)
        self.drive = self.x * noise_amp if input_mode == "noise" else None

    def _run(self, idx: Any, learn: bool) -> ForceEpoch:
        idx_t = torch.as_tensor(np.asarray(idx), device=self.data.device)
        return force_epoch(
            self.rls if learn else None,
            self.data[idx_t],
            weights=self.rls.weights,
            inputs=self.x[idx_t] if self.learn_inputs else None,
            drive=None if self.drive is None else self.drive[idx_t],
            target=self.target,
            **self.kw,
        )

    def train_epoch(self, epoch: int) -> float:
        """One pass over the training trials; the mean squared error of the updates."""
        order = np.random.default_rng([self.seed, 2, epoch]).permutation(self.train_idx)
        total = 0.0
        for start in range(0, len(order), self.batch):
            chunk = order[start : start + self.batch]
            total += self._run(chunk, learn=True).loss * len(chunk)
        return total / len(order)

    def evaluate(self, idx: Any) -> np.ndarray:
        """Free runs (no learning) of trials ``idx``: ``φ(h)`` ``[B, T, N]``, scaled units."""
        return self._run(idx, learn=False).rates.cpu().numpy().astype(np.float64)

    def weights(self) -> dict[str, torch.Tensor]:
        """``w_rec``, ``w_in``, ``b`` as float32 CPU copies."""
        w = self.rls.weights.detach().cpu().to(torch.float32)
        n, k = self.n, self.n_in
        w_in = w[:, n : n + k] if self.learn_inputs else self.w_in_fixed.to(torch.float32)
        b = w[:, -1] if self.kw["bias"] else torch.zeros(n)
        return {"w_rec": w[:, :n].clone(), "w_in": w_in.clone(), "b": b.clone()}
