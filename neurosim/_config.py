"""Small frozen configuration dataclasses, loadable from TOML and validated on load."""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

C = TypeVar("C")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range."""


def _check_type(section: str, name: str, value: Any, hint: Any) -> Any:
    """Return ``value`` coerced to ``hint`` or raise a :class:`ConfigError` naming the field."""
    where = f"{section}.{name}" if section else name
    origin = typing.get_origin(hint)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{where} = {value!r} is not allowed; choose one of {list(allowed)}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_type(section, name, value, a)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(
            errors[0] if len(errors) == 1 else f"{where} = {value!r}: " + "; ".join(errors)
        )
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table (dict), got {value!r}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[C], data: dict[str, Any], section: str = "") -> C:
    """Build the dataclass ``cls`` from ``data``, validating every field.

    Unknown keys are errors that list the accepted keys; types and ``Literal``
    choices are checked; the class's ``__post_init__`` checks ranges.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"[{section or cls.__name__}] must be a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(names))
    if unknown:
        where = f"[{section}]" if section else cls.__name__
        raise ConfigError(f"unknown field(s) {unknown} in {where}; accepted fields: {names}")
    kwargs = {k: _check_type(section, k, v, hints[k]) for k, v in data.items()}
    return cls(**kwargs)


def _positive(section: str, **values: float | int | None) -> None:
    for k, v in values.items():
        if v is not None and not v > 0:
            raise ConfigError(f"{section}.{k} must be > 0, got {v!r}")


@dataclass(frozen=True)
class TrainConfig:
    """How :func:`neurosim.train` trains.

    Attributes
    ----------
    n_steps : int
        Maximum number of gradient steps.
    batch_size : int
        Trials per step.
    lr : float
        Adam learning rate.
    weight_decay : float
        L2 penalty on all weights (Adam's ``weight_decay``).
    grad_clip : float or None
        Clip the global gradient norm to this value.
    loss : {"auto", "cross_entropy", "soft_cross_entropy", "mse"}
        ``auto`` takes the paradigm's ``loss`` attribute when it has one, else
        cross-entropy for class targets and MSE for continuous ones.
        ``soft_cross_entropy``: targets are distributions (e.g. a place-cell code), one
        per group of outputs (the paradigm's ``output_groups`` sizes, else all outputs).
    l2_recurrent : float
        ``l2_recurrent · ‖W_rec‖²`` added to the loss (the model's ``recurrent_weights``).
    noise : bool
        Train with the model's recurrent noise.
    eval_every, eval_trials : int
        Evaluate the paradigm's performance metric every ``eval_every`` steps on a
        fixed held-out set of ``eval_trials`` trials.
    target_performance : float or None
        Stop early once the evaluated performance reaches it.
    seed : int
        Seeds batches, noise and the evaluation set (weights: seed torch yourself).
    checkpoint_dir : str or None
        Where checkpoints go (``model.safetensors`` + ``state.pt`` + ``meta.json``).
    checkpoint_every : int or None
        Checkpoint period in steps (default: at each evaluation).
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir`` when there is one.
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda[:k]"``.
    quiet : bool
        No progress bar (also silenced when the ``CI`` variable is set).
    """

    n_steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-2
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    loss: Literal["auto", "cross_entropy", "soft_cross_entropy", "mse"] = "auto"
    l2_recurrent: float = 0.0
    noise: bool = True
    eval_every: int = 50
    eval_trials: int = 500
    target_performance: float | None = None
    seed: int = 0
    checkpoint_dir: str | None = None
    checkpoint_every: int | None = None
    resume: bool = False
    device: str = "auto"
    quiet: bool = False

    def __post_init__(self) -> None:
        _positive(
            "train",
            n_steps=self.n_steps,
            batch_size=self.batch_size,
            lr=self.lr,
            grad_clip=self.grad_clip,
            eval_every=self.eval_every,
            eval_trials=self.eval_trials,
            checkpoint_every=self.checkpoint_every,
        )
        for name in ("weight_decay", "l2_recurrent"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.target_performance is not None and not (0 < self.target_performance <= 1):
            raise ConfigError(
                f"train.target_performance must be in (0, 1], got {self.target_performance!r}"
            )
        if self.resume and self.checkpoint_dir is None:
            raise ConfigError("train.resume = true needs train.checkpoint_dir")


@dataclass(frozen=True)
class ModelConfig:
    """A :class:`neurosim.models.RateRNN` (sizes of input and output come from the paradigm)."""

    n_hidden: int = 64
    activation: Literal[
        "relu",
        "tanh",
        "softplus",
        "sigmoid",
        "retanh",
        "identity",
        "adaptive",
        "adaptive_per_neuron",
    ] = "relu"
    tau: float = 100.0
    sigma_rec: float = 0.05
    w_rec_init: Literal["orthogonal", "normal", "identity"] = "orthogonal"
    gain: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        _positive("model", n_hidden=self.n_hidden, tau=self.tau, gain=self.gain)
        if self.sigma_rec < 0:
            raise ConfigError(f"model.sigma_rec must be >= 0, got {self.sigma_rec!r}")


@dataclass(frozen=True)
class SimulateConfig:
    """How many held-out trials to simulate, and with which seed."""

    n_trials: int = 500
    seed: int = 1
    noise: bool = True

    def __post_init__(self) -> None:
        _positive("simulate", n_trials=self.n_trials)


@dataclass(frozen=True)
class RunConfig:
    """A whole experiment: paradigm, model, training and simulation (the CLI's TOML file).

    Example TOML::

        paradigm = "neurogym/PerceptualDecisionMaking-v0"
        [paradigm_kwargs]
        dt = 100
        [model]
        n_hidden = 64
        [train]
        n_steps = 500
        target_performance = 0.87
        [simulate]
        n_trials = 500
        seed = 1
    """

    paradigm: str = "neurogym/PerceptualDecisionMaking-v0"
    paradigm_kwargs: dict[str, Any] = field(default_factory=dict)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    simulate: SimulateConfig = field(default_factory=SimulateConfig)


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; a missing file or bad syntax gets an error naming the path."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from None


def load_run_config(source: str | Path | dict[str, Any]) -> RunConfig:
    """Load and validate a :class:`RunConfig` from a TOML file or a dict.

    Errors name the field, the value and what would be accepted.

    Examples
    --------
    >>> cfg = load_run_config({"model": {"n_hidden": 32}, "train": {"n_steps": 10}})
    >>> cfg.model.n_hidden, cfg.train.n_steps
    (32, 10)
    """
    data = dict(source) if isinstance(source, dict) else read_toml(source)
    sections = {"model": ModelConfig, "train": TrainConfig, "simulate": SimulateConfig}
    top = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(data) - top)
    if unknown:
        raise ConfigError(f"unknown top-level field(s) {unknown}; accepted: {sorted(top)}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in sections:
            kwargs[key] = from_dict(sections[key], value, key)
        elif key == "paradigm":
            kwargs[key] = _check_type("", key, value, str)
        else:
            kwargs[key] = _check_type("", key, value, dict[str, Any])
    return RunConfig(**kwargs)
