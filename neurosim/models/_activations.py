"""Activation functions of the rate models: the fixed table and the adaptive activation.

The adaptive activation of Geadah et al. (2020) interpolates between a softplus of
adjustable sharpness and a sigmoid::

    γ(x; n, s) = (1 − s)·(1/n)·log(1 + e^{n x}) + s·σ(n x)

With ``s = 0`` it is a softplus with β = n (ReLU as n → ∞, at most log 2 / n away
from it); with ``s = 1`` the logistic σ(n x). ``n`` and ``s`` are learned with the
weights, one shared pair or one pair per unit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

Activation = Callable[[torch.Tensor], torch.Tensor]

_ACTIVATIONS: dict[str, Activation] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "softplus": F.softplus,
    "sigmoid": torch.sigmoid,
    "retanh": lambda h: torch.tanh(torch.relu(h)),
    "identity": lambda h: h,
}
FIXED_ACTIVATIONS: tuple[str, ...] = tuple(sorted(_ACTIVATIONS))
ADAPTIVE_NAMES: tuple[str, ...] = ("adaptive", "adaptive_per_neuron")

N_MIN = 1e-3
"""Floor of the slope: ``n = N_MIN + softplus(n_raw)`` is always > 0."""
S_EPS = 1e-3
"""An initial ``s`` of exactly 0 or 1 is placed ``S_EPS`` inside (0, 1), where its logit
is finite and its gradient is not vanishingly small (see :class:`AdaptiveActivation`)."""
GEADAH_N = (5.0, 2.0)
"""Geadah et al. (2020)'s initial slope ``n₀ = 5 + 2·U(0, 1)``."""


def _inverse_softplus(y: np.ndarray) -> np.ndarray:
    """``ρ`` with ``log(1 + e^ρ) = y`` for ``y > 0`` (stable at both ends)."""
    return y + np.log(-np.expm1(-y))


def _as_values(value: Any, field: str, per_neuron: int | None) -> np.ndarray:
    """A float64 array of shape ``()`` (shared) or ``(per_neuron,)`` from a number or array."""
    if isinstance(value, bool) or isinstance(value, str):
        raise ValueError(
            f"AdaptiveActivation {field} must be a number or an array of numbers, got {value!r}"
        )
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"AdaptiveActivation {field} must be a number or an array of numbers, got {value!r}"
        ) from None
    if arr.ndim == 0:
        return arr if per_neuron is None else np.full(per_neuron, float(arr))
    if per_neuron is None:
        if arr.size != 1:
            raise ValueError(
                f"AdaptiveActivation {field} has {arr.size} values but per_neuron is None; "
                f"give per_neuron={arr.size} for one value per unit, or a single number"
            )
        return arr.reshape(())
    if arr.shape != (per_neuron,):
        raise ValueError(
            f"AdaptiveActivation {field} must be a number or have shape ({per_neuron},) "
            f"(per_neuron={per_neuron}), got shape {arr.shape}"
        )
    return arr


def _spec(value: Any) -> float | list[float] | str:
    """How an init value is recorded in :meth:`AdaptiveActivation.config` (JSON-safe)."""
    if isinstance(value, str):
        return value
    arr = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, float)
    return float(arr) if arr.ndim == 0 else [float(v) for v in arr.ravel()]


class AdaptiveActivation(nn.Module):
    """Adaptive activation γ(x; n, s) of Geadah et al. (2020), learned with the weights.

    ``γ(x; n, s) = (1 − s)·(1/n)·log(1 + e^{n x}) + s·σ(n x)``, applied elementwise
    over the last dimension: one shared ``(n, s)`` (``per_neuron=None``, the
    "homogeneous" network) or one pair per unit (``per_neuron=N``, "heterogeneous").

    **Parametrisation.** ``n`` and ``s`` stay in range by construction, never by
    clipping: ``n = N_MIN + softplus(n_raw)`` (> 0, with ``N_MIN = 1e-3``) and
    ``s = sigmoid(s_raw)`` (∈ (0, 1); exactly 0 or 1 only when ``s_raw`` saturates in
    float32). The raw tensors are the registered parameters (``n_raw``, ``s_raw``):
    trained by backprop, saved in ``state_dict`` and checkpoints. Since the sigmoid
    never reaches 0 or 1, an initial ``s`` of 0 or 1 is placed ``S_EPS = 1e-3``
    inside the interval (``s₀ = 0`` starts at ``s = 0.001``): the initial function is
    then within ``1e-3·|σ(nx) − softplus(nx)/n|`` of the exact boundary case, and the
    gradient reaching ``s_raw`` (scaled by ``s(1 − s)``) stays well above Adam's
    ``eps``. :meth:`gamma` evaluates the formula for any ``n > 0, 0 ≤ s ≤ 1`` exactly.

    The softplus is evaluated as ``softplus(n x) / n`` (linear beyond ``n x > 20``), so
    values and gradients stay finite for any ``|n x|``, 1e4 included.

    Parameters
    ----------
    n : float, array of shape (per_neuron,) or "geadah", default 1.0
        Initial slope (> ``N_MIN``). ``"geadah"`` draws Geadah et al.'s
        ``n₀ = 5 + 2·U(0, 1)`` (one draw, or one per unit) from ``seed``.
    s : float or array of shape (per_neuron,), default 0.0
        Initial softplus/sigmoid mix in [0, 1] (0: softplus, 1: sigmoid).
    per_neuron : int, optional
        Number of units for one ``(n, s)`` per unit; one shared pair when ``None``.
    seed : int, default 0
        Seeds the ``"geadah"`` draw (unused otherwise).

    Attributes
    ----------
    n, s : torch.Tensor
        The current slope and mix (shape ``()`` or ``(per_neuron,)``), differentiable.

    Examples
    --------
    >>> import torch
    >>> from neurosim.models import AdaptiveActivation
    >>> phi = AdaptiveActivation(n=2.0, s=0.5)
    >>> phi(torch.zeros(3))  # (1 − s)·log 2 / n + s / 2 at x = 0
    tensor([0.4233, 0.4233, 0.4233], grad_fn=<LerpBackward1>)
    >>> het = AdaptiveActivation.geadah(per_neuron=4, seed=0)
    >>> tuple(het.n.shape), bool(((het.n >= 5) & (het.n <= 7)).all())
    ((4,), True)
    >>> het.config()["n"], het.config()["per_neuron"]
    ('geadah', 4)
    """

    def __init__(
        self,
        n: float | np.ndarray | list[float] | torch.Tensor | str = 1.0,
        s: float | np.ndarray | list[float] | torch.Tensor = 0.0,
        per_neuron: int | None = None,
        *,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if per_neuron is not None and (
            isinstance(per_neuron, bool)
            or not isinstance(per_neuron, int | np.integer)
            or per_neuron < 1
        ):
            raise ValueError(
                f"AdaptiveActivation per_neuron must be None (shared) or a positive number "
                f"of units, got {per_neuron!r}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"AdaptiveActivation seed must be an integer >= 0, got {seed!r}")
        self.per_neuron = None if per_neuron is None else int(per_neuron)
        self.seed = int(seed)
        if isinstance(n, str) and n != "geadah":
            raise ValueError(
                f"AdaptiveActivation n must be a positive number, an array of them or 'geadah', "
                f"got {n!r}"
            )
        self._n_init = n if isinstance(n, str) else _as_values(n, "n", self.per_neuron)
        self._s_init = _as_values(s, "s", self.per_neuron)
        self._n_cfg, self._s_cfg = _spec(n), _spec(s)  # as given: a number stays a number
        if not isinstance(self._n_init, str) and not (
            np.isfinite(self._n_init).all() and (self._n_init > N_MIN).all()
        ):
            raise ValueError(
                f"AdaptiveActivation n must be finite and > {N_MIN} (n = {N_MIN} + softplus(n_raw)), "
                f"got {_spec(self._n_init)!r}"
            )
        if (
            not (np.isfinite(self._s_init).all() and (self._s_init >= 0).all())
            or (self._s_init > 1).any()
        ):
            raise ValueError(
                f"AdaptiveActivation s must lie in [0, 1], got {_spec(self._s_init)!r}"
            )
        shape = () if self.per_neuron is None else (self.per_neuron,)
        self.n_raw = nn.Parameter(torch.empty(shape))
        self.s_raw = nn.Parameter(torch.empty(shape))
        self.reset_parameters()

    @classmethod
    def geadah(cls, per_neuron: int | None = None, seed: int = 0) -> AdaptiveActivation:
        """Geadah et al. (2020)'s initialisation: ``n₀ = 5 + 2·U(0, 1)``, ``s₀ = 0``.

        Examples
        --------
        >>> AdaptiveActivation.geadah(seed=1).config()
        {'name': 'adaptive', 'n': 'geadah', 's': 0.0, 'per_neuron': None, 'seed': 1}
        """
        return cls(n="geadah", s=0.0, per_neuron=per_neuron, seed=seed)

    def initial_values(self) -> tuple[np.ndarray, np.ndarray]:
        """The initial ``(n, s)`` as float64 arrays (``s`` before the ``S_EPS`` shift)."""
        if isinstance(self._n_init, str):
            shape = () if self.per_neuron is None else (self.per_neuron,)
            lo, width = GEADAH_N
            n0 = lo + width * np.random.default_rng(self.seed).random(shape)
        else:
            n0 = self._n_init
        return np.asarray(n0, dtype=np.float64), self._s_init.copy()

    def reset_parameters(self) -> None:
        """Set ``n_raw``, ``s_raw`` so that ``(n, s)`` take their initial values."""
        n0, s0 = self.initial_values()
        s0 = np.clip(s0, S_EPS, 1.0 - S_EPS)
        with torch.no_grad():
            self.n_raw.copy_(torch.as_tensor(_inverse_softplus(n0 - N_MIN)))
            self.s_raw.copy_(torch.as_tensor(np.log(s0) - np.log1p(-s0)))

    @property
    def n(self) -> torch.Tensor:
        """Slope ``n = N_MIN + softplus(n_raw)`` (> 0)."""
        return N_MIN + F.softplus(self.n_raw)

    @property
    def s(self) -> torch.Tensor:
        """Mix ``s = sigmoid(s_raw)`` ∈ [0, 1]."""
        return torch.sigmoid(self.s_raw)

    @staticmethod
    def gamma(x: torch.Tensor, n: torch.Tensor | float, s: torch.Tensor | float) -> torch.Tensor:
        """γ(x; n, s) for given ``n > 0`` and ``s`` ∈ [0, 1] (broadcast over ``x``'s last dim).

        Examples
        --------
        >>> import torch
        >>> x = torch.linspace(-3, 3, 7)
        >>> torch.allclose(AdaptiveActivation.gamma(x, 4.0, 1.0), torch.sigmoid(4 * x))
        True
        """
        n = torch.as_tensor(n, dtype=x.dtype, device=x.device)
        s = torch.as_tensor(s, dtype=x.dtype, device=x.device)
        z = n * x
        return torch.lerp(F.softplus(z) / n, torch.sigmoid(z), s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """γ(x; n, s) elementwise; with ``per_neuron`` the last dim must have that size."""
        if self.per_neuron is not None and x.shape[-1] != self.per_neuron:
            raise ValueError(
                f"AdaptiveActivation has per_neuron={self.per_neuron} units; "
                f"got input with last dim {x.shape[-1]}"
            )
        return self.gamma(x, self.n, self.s)

    def config(self) -> dict[str, Any]:
        """JSON-safe constructor arguments (the initial values, not the trained ones).

        ``AdaptiveActivation(**{k: v for k, v in cfg.items() if k != "name"})`` rebuilds
        the module; ``load_state_dict`` then restores the trained ``(n, s)``.
        """
        cfg: dict[str, Any] = {
            "name": "adaptive",
            "n": self._n_cfg,
            "s": self._s_cfg,
            "per_neuron": self.per_neuron,
        }
        if isinstance(self._n_init, str):
            cfg["seed"] = self.seed
        return cfg

    def extra_repr(self) -> str:
        with torch.no_grad():
            n, s = self.n, self.s
            if self.per_neuron is None:
                return f"n={n.item():.4g}, s={s.item():.4g}"
            return (
                f"per_neuron={self.per_neuron}, n∈[{n.min().item():.4g}, {n.max().item():.4g}], "
                f"s∈[{s.min().item():.4g}, {s.max().item():.4g}]"
            )


_SPEC_KEYS = ("name", "n", "s", "per_neuron", "seed")


def _accepted() -> str:
    return (
        f"one of {list(FIXED_ACTIVATIONS + ADAPTIVE_NAMES)}, a dict "
        "{'name': 'adaptive', 'n': ..., 's': ..., 'per_neuron': bool, 'seed': ...}, "
        "an nn.Module or a callable"
    )


def resolve_activation(
    spec: str | Mapping[str, Any] | nn.Module | Activation, n_units: int
) -> tuple[Activation, str, str | dict[str, Any]]:
    """Turn an activation spec into ``(callable_or_module, name, config)``.

    Every rate model resolves its ``activation`` argument here, so any of them can
    use an adaptive activation whose ``(n, s)`` are registered parameters of the model
    (trained, checkpointed, rebuilt from the model's config).

    Parameters
    ----------
    spec : str, dict, nn.Module or callable
        - a fixed activation: ``relu, tanh, softplus, sigmoid, retanh, identity``;
        - ``"adaptive"`` (one shared ``(n, s)``, initially n = 1, s = 0) or
          ``"adaptive_per_neuron"`` (one pair per unit);
        - a dict ``{"name": "adaptive", "n": 5.0, "s": 0.0, "per_neuron": True}``
          (``n``, ``s``, ``seed`` as for :class:`AdaptiveActivation`; ``per_neuron``:
          ``False``/``None`` shared, ``True`` or ``n_units`` per unit);
          ``{"name": "tanh"}`` also works for a fixed one;
        - an :class:`AdaptiveActivation` (``per_neuron`` must be ``None`` or ``n_units``);
        - any other ``nn.Module`` or callable (recorded by its class name only).
    n_units : int
        Units the activation is applied to (the size of a per-neuron activation).

    Returns
    -------
    activation : callable
        The function or module to apply (assign it to the model so its parameters register).
    name : str
        A short name (``"tanh"``, ``"adaptive"``, ``"adaptive_per_neuron"``, a class name).
    config : str or dict
        What the model's ``config()`` records: the name of a fixed activation, the
        full dict of an adaptive one (rebuilt by passing it back here).

    Raises
    ------
    ValueError, TypeError
        For unknown names, unknown dict fields or bad values, naming the field.

    Examples
    --------
    >>> from neurosim.models import resolve_activation
    >>> fn, name, cfg = resolve_activation("tanh", 8)
    >>> name, cfg
    ('tanh', 'tanh')
    >>> phi, name, cfg = resolve_activation({"name": "adaptive", "n": 5.0, "per_neuron": True}, 8)
    >>> name, tuple(phi.n.shape), cfg
    ('adaptive_per_neuron', (8,), {'name': 'adaptive', 'n': 5.0, 's': 0.0, 'per_neuron': 8})
    """
    if isinstance(n_units, bool) or not isinstance(n_units, int | np.integer) or n_units < 1:
        raise ValueError(f"n_units must be a positive integer, got {n_units!r}")
    n_units = int(n_units)
    if isinstance(spec, str):
        if spec in _ACTIVATIONS:
            return _ACTIVATIONS[spec], spec, spec
        if spec in ADAPTIVE_NAMES:
            return resolve_activation({"name": spec}, n_units)
        raise ValueError(f"activation must be {_accepted()}; got {spec!r}")
    if isinstance(spec, Mapping):
        return _from_mapping(spec, n_units)
    if isinstance(spec, AdaptiveActivation):
        if spec.per_neuron not in (None, n_units):
            raise ValueError(
                f"activation is an AdaptiveActivation with per_neuron={spec.per_neuron}, "
                f"but the model has {n_units} units"
            )
        return spec, _adaptive_name(spec), spec.config()
    if callable(spec):
        name = type(spec).__name__
        return spec, name, name
    raise TypeError(f"activation must be {_accepted()}; got a {type(spec).__name__}")


def _adaptive_name(phi: AdaptiveActivation) -> str:
    return "adaptive" if phi.per_neuron is None else "adaptive_per_neuron"


def _from_mapping(
    spec: Mapping[str, Any], n_units: int
) -> tuple[Activation, str, str | dict[str, Any]]:
    if unknown := sorted(set(spec) - set(_SPEC_KEYS)):
        raise ValueError(
            f"activation dict has unknown field(s) {unknown}; accepted fields: {list(_SPEC_KEYS)}"
        )
    name = spec.get("name")
    if name in _ACTIVATIONS:
        if extra := sorted(set(spec) - {"name"}):
            raise ValueError(
                f"activation {name!r} is fixed and takes no parameters; got field(s) {extra}"
            )
        return resolve_activation(name, n_units)
    if name not in ADAPTIVE_NAMES:
        raise ValueError(
            f"activation dict field 'name' must be one of "
            f"{list(FIXED_ACTIVATIONS + ADAPTIVE_NAMES)}, got {name!r}"
        )
    per = spec.get("per_neuron", name == "adaptive_per_neuron")
    if per is None or per is False:
        per_neuron = None
    elif per is True:
        per_neuron = n_units
    elif isinstance(per, int | np.integer) and per == n_units:
        per_neuron = n_units
    else:
        raise ValueError(
            f"activation dict field 'per_neuron' must be true/false (or the model's {n_units} "
            f"units), got {per!r}"
        )
    if name == "adaptive_per_neuron" and per_neuron is None:
        raise ValueError("activation 'adaptive_per_neuron' cannot have per_neuron false")
    kwargs = {k: spec[k] for k in ("n", "s", "seed") if k in spec}
    phi = AdaptiveActivation(per_neuron=per_neuron, **kwargs)
    return phi, _adaptive_name(phi), phi.config()
