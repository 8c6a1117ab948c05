"""Maximum-likelihood fits of bandit agents to choice data, and model comparison.

The likelihood replays the data through the vectorised agent: ``reset``, then on every
trial ``log P(observed choice)`` from the agent's choice probabilities and ``update`` with
the observed choice and reward. One replay evaluates many parameter sets at once (one
"session" of the agent per session × parameter set), so the per-session fits (independent
problems) and their restarts all advance together: each runs its own scipy L-BFGS-B in a
thread, and the threads' requests for the objective are answered by one vectorised replay
(:class:`_LockstepBatcher`). Gradients are central finite differences in the search
coordinates (each parameter scaled to [0, 1] within its bounds; second-order one-sided
differences at the bounds), evaluated in the same replay.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.stats import qmc
from tqdm.auto import tqdm

from ._base import BanditAgent
from ._choice_data import ChoiceArrays, ChoiceData, choice_arrays

LOG_P_FLOOR = -690.0  # log(1e-300): the log-probability of a choice the agent rules out
# The search box is [0, _BOX] per parameter (its bounds mapped linearly). L-BFGS-B's first
# trial step has length 1: a box of 10 keeps it to a tenth of each range, not all of it.
_BOX = 10.0
_FD_STEP = 1e-5 * _BOX  # finite-difference step in the search coordinates
_MAX_THREADS = 512  # optimisation problems that run concurrently (the rest wait their turn)
_MAX_ROWS = 16384  # agent "sessions" per replay (memory: rows × trials of data per block)

AgentSpec = type[BanditAgent] | functools.partial


# -- agents given as classes or functools.partial ---------------------------------------------
@dataclass(frozen=True)
class _Agent:
    cls: type[BanditAgent]
    options: dict[str, Any]  # keyword options that are not parameters (e.g. a prior)
    preset: dict[str, Any]  # parameters fixed by the partial

    @property
    def name(self) -> str:
        return self.cls.name

    def make(self, params: Mapping[str, Any]) -> BanditAgent:
        return self.cls(**self.options, **params)


def _resolve_agent(spec: AgentSpec) -> _Agent:
    if isinstance(spec, functools.partial):
        if spec.args:
            raise TypeError("give agent options to functools.partial by keyword, not position")
        inner = _resolve_agent(spec.func)
        kw = dict(spec.keywords)
        preset = {k: v for k, v in kw.items() if k in inner.cls.param_names}
        options = {k: v for k, v in kw.items() if k not in preset}
        return _Agent(inner.cls, {**inner.options, **options}, {**inner.preset, **preset})
    if isinstance(spec, type) and issubclass(spec, BanditAgent):
        return _Agent(spec, {}, {})
    raise TypeError(
        f"agent must be a BanditAgent subclass or a functools.partial of one; got {spec!r}"
    )


# -- the likelihood ---------------------------------------------------------------------------
def _log_probs(agent: BanditAgent) -> np.ndarray:
    log_fn = getattr(agent, "log_choice_probabilities", None)
    if log_fn is not None:
        return log_fn()
    with np.errstate(divide="ignore"):
        return np.log(agent.choice_probabilities())


def _replay(agent: BanditAgent, data: ChoiceArrays) -> np.ndarray:
    """Log-likelihood of each row of ``data`` under ``agent`` (already built, one row each)."""
    S = data.n_sessions
    agent.reset(S, data.n_arms, np.random.default_rng(0))
    n_trials = data.n_trials
    rows = np.arange(S)
    total = np.zeros(S)
    for t in range(int(n_trials.max())):
        c = data.choices[:, t]
        logp = _log_probs(agent)[rows, c]
        if np.isnan(logp).any():
            raise FloatingPointError(
                f"{agent.name} gave a NaN choice probability on trial {t}; parameters "
                f"{ {k: v[np.isnan(logp)][:3].tolist() for k, v in agent.p.items()} }"
            )
        total += np.where(data.mask[:, t], np.maximum(logp, LOG_P_FLOOR), 0.0)
        if t + 1 < n_trials.max():
            agent.update(c, data.rewards[:, t])
    return total


def log_likelihood(
    agent: BanditAgent | AgentSpec,
    data: ChoiceData | ChoiceArrays,
    *,
    n_arms: int | None = None,
    **params: Any,
) -> np.ndarray:
    """Log-likelihood of each session's choices under an agent, ``float64 [S]``.

    Parameters
    ----------
    agent : BanditAgent instance, class or functools.partial
        An instance is used with its own parameters (numbers or one per session); a class
        or partial is built with ``params``.
    data : DataFrame, CSV path or ChoiceArrays
        ``session, trial, choice, reward`` (see :func:`validate_choice_data`).
    n_arms : int, optional
        Inferred from the choices when left out.
    **params
        Parameters when ``agent`` is a class.

    Returns
    -------
    numpy.ndarray
        ``Σ_t log P(choice_t | history)`` per session, in the sorted order of the session
        labels. A probability of 0 counts as ``log(1e-300)`` (:data:`LOG_P_FLOOR`).

    Examples
    --------
    >>> import pandas as pd
    >>> from neurosim.agents._baselines import SoftmaxQ
    >>> df = pd.DataFrame({"session": 0, "trial": [0, 1], "choice": [0, 0],
    ...                    "reward": [1.0, 0.0]})
    >>> ll = log_likelihood(SoftmaxQ, df, learning_rate=0.5, beta=2.0)
    >>> round(float(ll[0]), 4)  # log 0.5 + log σ(2 × 0.5)
    -1.0064
    """
    arrays = choice_arrays(data, n_arms)
    if isinstance(agent, BanditAgent):
        if params:
            raise TypeError("give parameters either to the agent instance or here, not both")
        return _replay(agent, arrays)
    spec = _resolve_agent(agent)
    return _replay(spec.make({**spec.preset, **params}), arrays)


# -- lockstep L-BFGS-B --------------------------------------------------------------------
@contextlib.contextmanager
def _blas_single_thread() -> Iterator[None]:
    """One BLAS thread while fitting: L-BFGS-B makes many tiny LAPACK calls, which a
    multi-threaded OpenBLAS slows down several-fold (with ``threadpoolctl`` when installed;
    otherwise set ``OPENBLAS_NUM_THREADS=1``)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


class _Abort(Exception):
    """Raised in the optimiser threads when another thread's evaluation failed."""


class _LockstepBatcher:
    """Answers the objective requests of many concurrent scipy optimisers in one batch.

    Each problem's thread calls ``batcher(pid, x)`` and blocks; when every live problem is
    waiting, the last one to arrive evaluates them all with ``evaluate({pid: x})`` and wakes
    the others. A problem that finishes calls ``done(pid)``.
    """

    def __init__(
        self,
        evaluate: Callable[[dict[int, np.ndarray]], dict[int, tuple[float, np.ndarray]]],
        n_live: int,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        self._evaluate = evaluate
        self._cv = threading.Condition()
        self._waiting: dict[int, np.ndarray] = {}
        self._results: dict[int, tuple[float, np.ndarray]] = {}
        self._live = n_live
        self._on_done = on_done
        self.error: BaseException | None = None
        self.n_batches = 0

    def __call__(self, pid: int, x: np.ndarray) -> tuple[float, np.ndarray]:
        with self._cv:
            if self.error is not None:
                raise _Abort
            self._waiting[pid] = np.array(x, dtype=np.float64)
            self._run_if_ready()
            while pid not in self._results:
                if self.error is not None:
                    raise _Abort
                self._cv.wait()
            return self._results.pop(pid)

    def done(self, pid: int) -> None:
        with self._cv:
            self._live -= 1
            if self._on_done is not None:
                self._on_done()
            self._run_if_ready()

    def _run_if_ready(self) -> None:  # lock held
        if not self._waiting or len(self._waiting) < self._live or self.error is not None:
            return
        batch, self._waiting = self._waiting, {}
        try:
            self._results.update(self._evaluate(batch))
            self.n_batches += 1
        except BaseException as exc:  # noqa: BLE001 - handed to the caller after the join
            self.error = exc
        self._cv.notify_all()


def _lockstep_minimize(
    evaluate: Callable[[dict[int, np.ndarray]], dict[int, tuple[float, np.ndarray]]],
    x0: np.ndarray,
    *,
    maxiter: int,
    progress: bool,
    desc: str,
) -> list[optimize.OptimizeResult]:
    """L-BFGS-B on [0, 1]^k from every row of ``x0 [P, k]``, all objectives batched."""
    P, k = x0.shape
    results: list[optimize.OptimizeResult | None] = [None] * P
    bar = tqdm(total=P, desc=desc, disable=not progress, leave=False)
    for start in range(0, P, _MAX_THREADS):
        chunk = range(start, min(P, start + _MAX_THREADS))
        batcher = _LockstepBatcher(evaluate, len(chunk), on_done=lambda: bar.update(1))
        failures: list[BaseException] = []

        def work(
            pid: int,
            batcher: _LockstepBatcher = batcher,
            failures: list[BaseException] = failures,
        ) -> None:
            try:
                results[pid] = optimize.minimize(
                    lambda x: batcher(pid, x),
                    x0[pid],
                    jac=True,
                    method="L-BFGS-B",
                    bounds=[(0.0, _BOX)] * k,
                    options={"maxiter": maxiter},
                )
            except _Abort:
                pass
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                failures.append(exc)
            finally:
                batcher.done(pid)

        threads = [threading.Thread(target=work, args=(pid,), daemon=True) for pid in chunk]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        if batcher.error is not None:
            bar.close()
            raise batcher.error
        if failures:
            bar.close()
            raise failures[0]
    bar.close()
    return results  # type: ignore[return-value]


# -- fit results ------------------------------------------------------------------------------
@dataclass
class FitResult:
    """Maximum-likelihood fit of one agent class to choice data.

    Attributes
    ----------
    agent : str
        The agent's ``name``.
    per_session : bool
        One parameter set per session (True) or one shared by all sessions (pooled).
    free : tuple of str
        The fitted parameters; the others were fixed (``fixed``, a partial, or defaults).
    params : pandas.DataFrame
        Every parameter of the agent, one row per session (index: session labels) or one
        row ``"pooled"``.
    loglik : pandas.Series
        Maximised log-likelihood of each session (index: session labels).
    n_trials : pandas.Series
        Trials per session.
    n_params : int
        Free parameters per fit (``len(free)``).
    aic, bic : pandas.Series
        Per fit (indexed like ``params``): ``2k − 2 LL`` and ``k ln n − 2 LL`` with ``n``
        the trials of that fit (the session's, or all trials when pooled).
    converged : pandas.Series
        Whether scipy reported success for the best restart of each fit.
    bounds : dict
        The search bounds of each free parameter.
    n_restarts, seed : int
    """

    agent: str
    per_session: bool
    free: tuple[str, ...]
    params: pd.DataFrame
    loglik: pd.Series
    n_trials: pd.Series
    n_params: int
    aic: pd.Series
    bic: pd.Series
    converged: pd.Series
    n_restarts: int
    seed: int
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    restart_loglik: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))

    @property
    def loglik_total(self) -> float:
        return float(self.loglik.sum())

    @property
    def k_total(self) -> int:
        """Free parameters over all fits (``n_params × n_sessions`` per session)."""
        return self.n_params * len(self.params)

    @property
    def aic_total(self) -> float:
        return float(self.aic.sum())

    @property
    def bic_total(self) -> float:
        return float(self.bic.sum())

    def at_bound(self, rtol: float = 1e-6) -> pd.DataFrame:
        """Whether each fitted free parameter sits on a search bound (within ``rtol`` of the
        range): the likelihood rose towards the bound, so the value is a limit rather than
        an interior maximum (e.g. β of a subject whose choices are all greedy)."""
        out = {}
        for p, (lo, hi) in self.bounds.items():
            v = self.params[p].to_numpy(dtype=np.float64)
            tol = rtol * (hi - lo)
            out[p] = (v <= lo + tol) | (v >= hi - tol)
        return pd.DataFrame(out, index=self.params.index)

    def to_frame(self) -> pd.DataFrame:
        """One row per fit: parameters, loglik, n_trials, n_params, aic, bic, converged."""
        out = self.params.copy()
        if self.per_session:
            out["loglik"] = self.loglik.to_numpy()
            out["n_trials"] = self.n_trials.to_numpy()
        else:
            out["loglik"] = self.loglik_total
            out["n_trials"] = int(self.n_trials.sum())
        out["n_params"] = self.n_params
        out["aic"] = self.aic.to_numpy()
        out["bic"] = self.bic.to_numpy()
        out["converged"] = self.converged.to_numpy()
        out.insert(0, "agent", self.agent)
        return out

    def __repr__(self) -> str:
        kind = f"{len(self.params)} sessions" if self.per_session else "pooled"
        return (
            f"FitResult({self.agent}, {kind}, free={list(self.free)}, "
            f"loglik={self.loglik_total:.2f}, aic={self.aic_total:.2f}, bic={self.bic_total:.2f})"
        )


def _check_known(given: Mapping[str, Any], cls: type[BanditAgent], what: str) -> None:
    """A ``ValueError`` naming the keys of ``given`` that are not parameters of ``cls``."""
    unknown = sorted(set(given) - set(cls.param_names))
    if unknown:
        raise ValueError(
            f"{what} unknown parameter(s) {unknown} of {cls.__name__}; its parameters are "
            f"{list(cls.param_names)}"
        )


def _check_bounds(
    agent: _Agent, free: Sequence[str], bounds: Mapping[str, tuple[float, float]] | None
) -> dict[str, tuple[float, float]]:
    bounds = dict(bounds or {})
    _check_known(bounds, agent.cls, "bounds given for")
    out = {}
    for p in free:
        lo, hi = bounds.get(p, agent.cls.param_bounds.get(p, (math.nan, math.nan)))
        dlo, dhi = agent.cls.param_domain.get(p, (-math.inf, math.inf))
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi and dlo <= lo and hi <= dhi):
            raise ValueError(
                f"bounds for {p} = ({lo}, {hi}) are not allowed; give finite low < high "
                f"inside the parameter's domain [{dlo}, {dhi}]"
            )
        out[p] = (float(lo), float(hi))
    return out


def fit_agent(
    agent_class: AgentSpec,
    data: ChoiceData | ChoiceArrays,
    *,
    n_arms: int | None = None,
    per_session: bool = True,
    free: Sequence[str] | None = None,
    fixed: Mapping[str, Any] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    log_scale: Sequence[str] | None = None,
    n_restarts: int = 5,
    seed: int = 0,
    n_grid: int = 64,
    maxiter: int = 200,
    progress: bool = False,
) -> FitResult:
    """Fit an agent's parameters to choice data by maximum likelihood.

    Every (session, restart) pair — or every restart of the pooled fit — runs its own
    scipy L-BFGS-B in the search coordinates (each free parameter scaled to [0, 1] within
    its bounds); all of them are evaluated together by one vectorised replay of the data
    per step, with central finite-difference gradients. The first restart starts at the
    agent's defaults, the others at the best points of a seeded space-filling design over
    the bounds; the best end point is kept.

    Parameters
    ----------
    agent_class : BanditAgent subclass or functools.partial
        E.g. ``SoftmaxQ``, or ``functools.partial(RenyiAgent, prior=...)`` for an agent
        with options: keyword options of the partial that are parameters are held fixed
        at the given value, the others are passed to the constructor.
    data : DataFrame, CSV path or ChoiceArrays
        ``session, trial, choice, reward`` (see :func:`validate_choice_data`); sessions may
        have different lengths.
    n_arms : int, optional
        Inferred from the choices when left out.
    per_session : bool, default True
        One parameter set per session; False fits one set to all sessions (pooled).
    free : sequence of str, optional
        The parameters to fit; default the class's ``fit_params`` (all ``param_names``
        unless the class says otherwise, e.g. only ``beta`` for KalmanSoftmax), minus
        ``fixed``. The others take ``fixed``, the partial's values, or the defaults.
    fixed : dict, optional
        Parameter values to hold fixed: a number, or one value per session (in sorted
        session order).
    bounds : dict, optional
        Search bounds ``(low, high)`` per parameter, overriding the class's
        ``param_bounds``.
    log_scale : sequence of str, optional
        Free parameters searched (and their design drawn) on a log scale, e.g. a Rényi
        ``alpha`` spanning decades; default the class's ``log_params`` (none).
    n_restarts : int, default 5
        Optimisations per fit: one from the defaults, the others from the best points
        (highest likelihood) of a scrambled Sobol design of ``n_grid`` points over the
        bounds, evaluated in one replay. (Plain uniform starts tend to land on flat edges
        of the likelihood, e.g. learning rate 0 where β does nothing.)
    seed : int, default 0
        Seeds the design: same seed, same fit.
    n_grid : int, default 64
        Size of the starting-point design (a power of 2).
    maxiter : int, default 200
        L-BFGS-B iterations per restart.
    progress : bool, default False
        Progress bar over finished optimisations.

    Returns
    -------
    FitResult

    Examples
    --------
    >>> import paradigms
    >>> from neurosim.agents import run_bandit, choices_frame
    >>> from neurosim.agents._baselines import SoftmaxQ
    >>> env = paradigms.make("bandit/bernoulli", probs=[0.8, 0.2])
    >>> ds = run_bandit(SoftmaxQ(learning_rate=0.3, beta=4.0), env, 20, 100, seed=0)
    >>> fit = fit_agent(SoftmaxQ, choices_frame(ds), per_session=False, n_restarts=2)
    >>> fit.params.round(1).to_dict("records")
    [{'learning_rate': 0.3, 'beta': 3.8}]
    """
    spec = _resolve_agent(agent_class)
    arrays = choice_arrays(data, n_arms)
    S = arrays.n_sessions
    fixed = dict(fixed or {})
    _check_known(fixed, spec.cls, "fixed gives")
    if free is None:
        default_free = getattr(spec.cls, "fit_params", spec.cls.param_names)
        free = [p for p in default_free if p not in fixed and p not in spec.preset]
    else:
        free = list(free)
        bad = [p for p in free if p not in spec.cls.param_names or p in fixed]
        if bad:
            raise ValueError(
                f"free parameter(s) {bad} are not parameters of {spec.cls.__name__} or are "
                f"also fixed; its parameters are {list(spec.cls.param_names)}"
            )
    if not isinstance(n_restarts, int | np.integer) or n_restarts < 1:
        raise ValueError(f"n_restarts = {n_restarts!r} is not allowed; give an integer >= 1")
    if not isinstance(n_grid, int | np.integer) or n_grid < 1 or n_grid & (n_grid - 1):
        raise ValueError(f"n_grid = {n_grid!r} is not allowed; give a power of 2 (e.g. 64)")
    box = _check_bounds(spec, free, bounds)
    k = len(free)
    # the held parameters, one value per session
    held: dict[str, np.ndarray] = {}
    for p in spec.cls.param_names:
        if p in free:
            continue
        value = fixed.get(p, spec.preset.get(p, spec.cls.defaults.get(p)))
        if value is None:
            raise ValueError(f"{spec.cls.__name__} parameter {p} needs a value: fix it or free it")
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim == 1 and len(arr) != S:
            raise ValueError(
                f"fixed {p} has {len(arr)} values but the data have {S} sessions; give one "
                "value or one per session"
            )
        held[p] = np.broadcast_to(arr, (S,)).copy()
    if log_scale is None:
        log_scale = [p for p in getattr(spec.cls, "log_params", ()) if p in free]
    bad = [p for p in log_scale if p not in free or box[p][0] <= 0]
    if bad:
        raise ValueError(
            f"log_scale parameter(s) {bad} must be free and have bounds > 0 (free: {free})"
        )
    is_log = np.array([p in log_scale for p in free], dtype=bool)
    low = np.array([box[p][0] for p in free])
    high = np.array([box[p][1] for p in free])
    lo = np.log(low, out=low.copy(), where=is_log)
    width = np.log(high, out=high.copy(), where=is_log) - lo

    def to_params(x: np.ndarray) -> np.ndarray:
        t = lo + (x / _BOX) * width
        return np.clip(np.exp(t, out=t.copy(), where=is_log), low, high)

    def to_search(value: np.ndarray) -> np.ndarray:
        value = np.clip(value, low, high)
        t = np.log(value, out=value.copy(), where=is_log)
        return np.clip((t - lo) / width, 0.0, 1.0) * _BOX

    # problems: (restart r, unit u) with unit = session (per session) or all (pooled)
    units = [np.array([s]) for s in range(S)] if per_session else [np.arange(S)]
    U = len(units)

    def evaluate_points(points: list[tuple[int, np.ndarray]]) -> np.ndarray:
        """Total log-likelihood of each (unit, x) pair: one replay per block of rows."""
        out = np.empty(len(points))
        first = 0
        while first < len(points):
            stop, rows = first, 0
            while stop < len(points) and (
                rows == 0 or rows + len(units[points[stop][0]]) <= _MAX_ROWS
            ):
                rows += len(units[points[stop][0]])
                stop += 1
            block = points[first:stop]
            sess = np.concatenate([units[u] for u, _ in block])
            owner = np.concatenate([np.full(len(units[u]), i) for i, (u, _) in enumerate(block)])
            values = np.stack([to_params(x) for _, x in block]) if k else np.empty((len(block), 0))
            params = {p: values[owner, i] for i, p in enumerate(free)}
            params.update({p: v[sess] for p, v in held.items()})
            ll = _replay(spec.make(params), arrays.subset(sess))
            out[first:stop] = np.bincount(owner, weights=ll, minlength=len(block))
            first = stop
        return out

    # starting points: the defaults, then the best points of a seeded space-filling design
    rng = np.random.default_rng(seed)
    start = np.empty((n_restarts, U, k))
    if k:
        default = np.array(
            [spec.cls.defaults.get(p, (low[i] + high[i]) / 2) for i, p in enumerate(free)],
            dtype=np.float64,
        )
        start[0] = to_search(default)
        if n_restarts > 1:
            design = qmc.Sobol(k, scramble=True, seed=rng).random(n_grid) * _BOX
            grid_ll = evaluate_points([(u, x) for u in range(U) for x in design]).reshape(U, -1)
            top = np.argsort(-grid_ll, axis=1, kind="stable")[:, : n_restarts - 1]  # [U, R-1]
            start[1 : 1 + top.shape[1]] = design[top].transpose(1, 0, 2)
            start[1 + top.shape[1] :] = rng.uniform(
                0.0, _BOX, (n_restarts - 1 - top.shape[1], U, k)
            )
    x0 = start.reshape(n_restarts * U, k)
    unit_of = np.tile(np.arange(U), n_restarts)

    if k == 0:
        ll = evaluate_points([(u, np.empty(0)) for u in range(U)])
        best_x = np.empty((U, 0))
        restart_ll = ll[None, :]
        converged = np.ones(U, bool)
    else:

        def evaluate(batch: dict[int, np.ndarray]) -> dict[int, tuple[float, np.ndarray]]:
            pids = list(batch)
            points: list[tuple[int, np.ndarray]] = []
            steps = []
            for pid in pids:
                x = np.clip(batch[pid], 0.0, _BOX)
                points.append((unit_of[pid], x))
                for j in range(k):
                    h = _FD_STEP
                    if x[j] - h < 0.0:
                        sign = 1.0  # forward: x, x+h, x+2h
                    elif x[j] + h > _BOX:
                        sign = -1.0  # backward
                    else:
                        sign = 0.0  # central
                    e = np.zeros(k)
                    e[j] = h
                    if sign == 0.0:
                        points += [(unit_of[pid], x - e), (unit_of[pid], x + e)]
                    else:
                        points += [(unit_of[pid], x + sign * e), (unit_of[pid], x + 2 * sign * e)]
                    steps.append(sign)
            ll = evaluate_points(points)
            out = {}
            n_per = 1 + 2 * k
            for i, pid in enumerate(pids):
                block = ll[i * n_per : (i + 1) * n_per]
                f0 = block[0]
                grad = np.empty(k)
                for j in range(k):
                    a, b = block[1 + 2 * j], block[2 + 2 * j]
                    sign = steps[i * k + j]
                    if sign == 0.0:
                        grad[j] = (b - a) / (2 * _FD_STEP)
                    else:  # second order one-sided: (−3 f0 + 4 f1 − f2) / (2 h·sign)
                        grad[j] = (-3 * f0 + 4 * a - b) / (2 * _FD_STEP * sign)
                out[pid] = (-f0, -grad)
            return out

        with _blas_single_thread():
            res = _lockstep_minimize(
                evaluate, x0, maxiter=maxiter, progress=progress, desc=f"fit {spec.name}"
            )
        xs = np.stack([np.clip(r.x, 0.0, _BOX) for r in res]).reshape(n_restarts, U, k)
        ok = np.array([bool(r.success) for r in res]).reshape(n_restarts, U)
        # re-evaluate every restart's end point exactly (not the optimiser's cached value)
        final = evaluate_points([(u, xs[r, u]) for r in range(n_restarts) for u in range(U)])
        restart_ll = final.reshape(n_restarts, U)
        best = restart_ll.argmax(0)
        best_x = xs[best, np.arange(U)]
        converged = ok[best, np.arange(U)]

    # per-session log-likelihoods at the best parameters
    values = np.stack([to_params(x) for x in best_x]) if k else np.empty((U, 0))
    if per_session:
        session_ll = evaluate_points([(u, best_x[u]) for u in range(U)])
    else:  # one point, every session: the per-session terms of the pooled fit
        session_ll = np.empty(S)
        for lo_s in range(0, S, _MAX_ROWS):
            sess = np.arange(lo_s, min(S, lo_s + _MAX_ROWS))
            params_all = {p: np.full(len(sess), values[0, i]) for i, p in enumerate(free)}
            params_all.update({p: v[sess] for p, v in held.items()})
            session_ll[sess] = _replay(spec.make(params_all), arrays.subset(sess))

    labels = pd.Index(arrays.sessions, name="session")
    n_trials = pd.Series(arrays.n_trials, index=labels, name="n_trials")
    loglik = pd.Series(session_ll, index=labels, name="loglik")
    if per_session:
        index = labels
        table = {p: values[:, i] for i, p in enumerate(free)}
        table.update(held)
        unit_ll = session_ll
        unit_n = arrays.n_trials.astype(np.float64)
    else:
        index = pd.Index(["pooled"], name="session")
        table = {p: values[:, i] for i, p in enumerate(free)}
        for p, v in held.items():
            table[p] = v[:1] if np.all(v == v[0]) else [v.tolist()]
        unit_ll = np.array([session_ll.sum()])
        unit_n = np.array([float(arrays.n_trials.sum())])
    params = pd.DataFrame({p: table[p] for p in spec.cls.param_names}, index=index)
    return FitResult(
        agent=spec.name,
        per_session=per_session,
        free=tuple(free),
        params=params,
        loglik=loglik,
        n_trials=n_trials,
        n_params=k,
        aic=pd.Series(2 * k - 2 * unit_ll, index=index, name="aic"),
        bic=pd.Series(k * np.log(unit_n) - 2 * unit_ll, index=index, name="bic"),
        converged=pd.Series(converged, index=index, name="converged"),
        n_restarts=int(n_restarts),
        seed=int(seed),
        bounds=box,
        restart_loglik=restart_ll,
    )


def _agent_names(agents: Sequence[AgentSpec] | Mapping[str, AgentSpec]) -> dict[str, AgentSpec]:
    if isinstance(agents, Mapping):
        return dict(agents)
    out: dict[str, AgentSpec] = {}
    for spec in agents:
        name = _resolve_agent(spec).name
        if name in out:
            raise ValueError(
                f"two agents are both named {name!r}; pass a dict {{name: agent}} to tell them apart"
            )
        out[name] = spec
    return out


def compare_models(
    data: ChoiceData | ChoiceArrays,
    agent_classes: Sequence[AgentSpec] | Mapping[str, AgentSpec],
    *,
    n_arms: int | None = None,
    per_session: bool = True,
    n_restarts: int = 5,
    seed: int = 0,
    progress: bool = False,
    return_fits: bool = False,
    **fit_kwargs: Any,
) -> pd.DataFrame | tuple[pd.DataFrame, dict[str, FitResult]]:
    """Fit several agents to the same choice data and rank them by BIC.

    Parameters
    ----------
    data : DataFrame, CSV path or ChoiceArrays
    agent_classes : sequence or dict of agent classes / functools.partial
        A dict names the models (needed when two entries share a class, e.g. two Rényi
        priors); otherwise each is named by its class's ``name``.
    n_arms, per_session, n_restarts, seed, progress
        As in :func:`fit_agent`.
    return_fits : bool, default False
        Also return ``{model: FitResult}``.
    **fit_kwargs
        Passed to every :func:`fit_agent` call (e.g. ``maxiter``).

    Returns
    -------
    pandas.DataFrame
        One row per model, best first: ``model, loglik, k`` (free parameters summed over
        fits), ``n_trials, aic, bic, delta_aic, delta_bic`` (to the best),
        ``bic_weight`` (``exp(−ΔBIC/2)`` normalised), ``n_best_sessions`` (sessions whose
        BIC is lowest for this model, per-session fits only) and ``best``.

    Examples
    --------
    >>> import paradigms
    >>> from neurosim.agents import run_bandit, choices_frame
    >>> from neurosim.agents._baselines import EpsilonGreedy, SoftmaxQ
    >>> env = paradigms.make("bandit/bernoulli", probs=[0.7, 0.3])
    >>> df = choices_frame(run_bandit(SoftmaxQ(learning_rate=0.3, beta=5.0), env, 10, 100))
    >>> table = compare_models(df, [SoftmaxQ, EpsilonGreedy], per_session=False, n_restarts=2)
    >>> table["model"].tolist(), table["best"].tolist()
    (['softmax_q', 'epsilon_greedy'], [True, False])
    """
    models = _agent_names(agent_classes)
    if not models:
        raise ValueError("give at least one agent class to compare")
    arrays = choice_arrays(data, n_arms)
    fits = {
        name: fit_agent(
            spec,
            arrays,
            per_session=per_session,
            n_restarts=n_restarts,
            seed=seed,
            progress=progress,
            **fit_kwargs,
        )
        for name, spec in models.items()
    }
    rows = []
    for name, fit in fits.items():
        rows.append(
            {
                "model": name,
                "loglik": fit.loglik_total,
                "k": fit.k_total,
                "n_trials": int(fit.n_trials.sum()),
                "aic": fit.aic_total,
                "bic": fit.bic_total,
            }
        )
    table = pd.DataFrame(rows)
    table["delta_aic"] = table["aic"] - table["aic"].min()
    table["delta_bic"] = table["bic"] - table["bic"].min()
    w = np.exp(-0.5 * table["delta_bic"].to_numpy())
    table["bic_weight"] = w / w.sum()
    if per_session:
        bics = np.stack([fit.bic.to_numpy() for fit in fits.values()])  # [M, S]
        wins = np.bincount(bics.argmin(0), minlength=len(fits))
        table["n_best_sessions"] = wins
    table["best"] = table["delta_bic"] == 0.0
    table = table.sort_values("bic", kind="stable").reset_index(drop=True)
    if return_fits:
        return table, fits
    return table
