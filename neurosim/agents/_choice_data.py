"""Choice data for fitting bandit agents: validation and conversion to padded arrays."""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("session", "trial", "choice", "reward")

ChoiceData = pd.DataFrame | str | PathLike


def _rows(mask: np.ndarray, limit: int = 5) -> str:
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(i) for i in idx[:limit])
    more = f" and {len(idx) - limit} more" if len(idx) > limit else ""
    return f"row{'s' if len(idx) > 1 else ''} {shown}{more}"


def _show(value: object) -> str:
    return repr(value.item() if isinstance(value, np.generic) else value)


def _numeric(df: pd.DataFrame, column: str) -> np.ndarray:
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(values) & df[column].notna().to_numpy()
    if bad.any():
        first = df[column].to_numpy()[np.flatnonzero(bad)[0]]
        raise ValueError(
            f"column {column!r} must hold numbers; found {_show(first)} at {_rows(bad)} "
            "(0-based, in input order)"
        )
    missing = ~np.isfinite(values)
    if missing.any():
        first = values[np.flatnonzero(missing)[0]]
        raise ValueError(
            f"column {column!r} has a missing or infinite value ({_show(first)}) at {_rows(missing)} "
            "(0-based, in input order); nothing is dropped silently: remove or fill those rows"
        )
    return values


def _integers(df: pd.DataFrame, column: str) -> np.ndarray:
    values = _numeric(df, column)
    bad = values != np.round(values)
    if bad.any():
        first = values[np.flatnonzero(bad)[0]]
        raise ValueError(
            f"column {column!r} must hold integers; found {_show(first)} at {_rows(bad)} "
            "(0-based, in input order)"
        )
    return values.astype(np.int64)


def validate_choice_data(data: ChoiceData, n_arms: int | None = None) -> pd.DataFrame:
    """Check choice data and return them as a clean frame sorted by session and trial.

    Parameters
    ----------
    data : pandas.DataFrame or path to a CSV file
        One row per trial with columns ``session`` (any labels without missing values),
        ``trial`` (integers, consecutive within each session: 0, 1, 2, ... or starting
        anywhere), ``choice`` (integers in ``[0, n_arms)``) and ``reward`` (finite numbers).
        Other columns are kept.
    n_arms : int, optional
        Number of arms; inferred as ``max(choice) + 1`` (at least 2) when left out.

    Returns
    -------
    pandas.DataFrame
        The same rows, sorted by ``session`` then ``trial``, with ``trial`` and ``choice``
        as int64 and ``reward`` as float64, a fresh index, and ``attrs["n_arms"]``.

    Raises
    ------
    ValueError
        Naming the column, the offending value and its row (0-based, in input order) for:
        a missing column, an empty table, non-numeric, missing (NaN) or infinite values,
        non-integer trials or choices, choices < 0 or >= ``n_arms``, a repeated
        ``(session, trial)`` pair, or trials that skip a number within a session. No row is
        ever dropped.
    TypeError
        If ``data`` is neither a DataFrame nor a path.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"session": [0, 0, 1], "trial": [1, 0, 0],
    ...                    "choice": [1, 0, 1], "reward": [1.0, 0.0, 1.0]})
    >>> validate_choice_data(df)[["session", "trial", "choice"]].values.tolist()
    [[0, 0, 0], [0, 1, 1], [1, 0, 1]]
    >>> validate_choice_data(df.assign(choice=[0, 2, 1]), n_arms=2)
    Traceback (most recent call last):
    ...
    ValueError: column 'choice' must lie in [0, 1] (n_arms = 2); found 2 at row 1 (0-based, in input order)
    """
    if isinstance(data, str | PathLike):
        path = Path(data)
        if not path.is_file():
            raise FileNotFoundError(f"choice data file {str(path)!r} does not exist")
        df = pd.read_csv(path)
    elif isinstance(data, pd.DataFrame):
        df = data.copy()
    else:
        raise TypeError(
            f"data must be a pandas DataFrame or a path to a CSV file; got {type(data).__name__}"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"choice data lack column(s) {missing}; they need {list(REQUIRED_COLUMNS)} "
            f"(found {[str(c) for c in df.columns]})"
        )
    if len(df) == 0:
        raise ValueError("choice data are empty: give at least one trial")
    df = df.reset_index(drop=True)
    if df["session"].isna().any():
        raise ValueError(
            f"column 'session' has a missing value at {_rows(df['session'].isna().to_numpy())} "
            "(0-based, in input order)"
        )
    trial = _integers(df, "trial")
    choice = _integers(df, "choice")
    reward = _numeric(df, "reward")
    if n_arms is None:
        n_arms = max(int(choice.max()) + 1, 2)
    elif not isinstance(n_arms, int | np.integer) or n_arms < 2:
        raise ValueError(f"n_arms = {n_arms!r} is not allowed; give an integer >= 2")
    bad = (choice < 0) | (choice >= n_arms)
    if bad.any():
        raise ValueError(
            f"column 'choice' must lie in [0, {n_arms - 1}] (n_arms = {n_arms}); found "
            f"{_show(choice[np.flatnonzero(bad)[0]])} at {_rows(bad)} (0-based, in input order)"
        )
    df["trial"], df["choice"], df["reward"] = trial, choice, reward
    df["_row"] = np.arange(len(df))
    df = df.sort_values(["session", "trial"], kind="stable").reset_index(drop=True)
    dup = df.duplicated(["session", "trial"], keep=False).to_numpy()
    if dup.any():
        i = np.flatnonzero(dup)[0]
        first = {"session": df["session"].iloc[i], "trial": df["trial"].iloc[i]}
        same_pair = (df["session"] == first["session"]) & (df["trial"] == first["trial"])
        rows = df.loc[dup & same_pair.to_numpy(), "_row"].tolist()
        raise ValueError(
            f"(session, trial) = ({_show(first['session'])}, {_show(first['trial'])}) appears more than "
            f"once, at rows {rows} (0-based, in input order); each trial must appear once"
        )
    same = df["session"].to_numpy()[1:] == df["session"].to_numpy()[:-1]
    gap = same & (np.diff(df["trial"].to_numpy()) != 1)
    if gap.any():
        i = np.flatnonzero(gap)[0]
        raise ValueError(
            f"trials of session {_show(df['session'].iloc[i])} are not consecutive: trial "
            f"{df['trial'].iloc[i]} (row {df['_row'].iloc[i]}) is followed by trial "
            f"{df['trial'].iloc[i + 1]} (row {df['_row'].iloc[i + 1]}); give every trial "
            "(0-based rows, in input order)"
        )
    df = df.drop(columns="_row")
    df.attrs["n_arms"] = int(n_arms)
    return df


@dataclass(frozen=True)
class ChoiceArrays:
    """Choice data as arrays ``[S, T]``, sessions padded to the longest and masked.

    Attributes
    ----------
    choices : numpy.ndarray
        int64 ``[S, T]`` (0 on padding).
    rewards : numpy.ndarray
        float64 ``[S, T]`` (0 on padding).
    mask : numpy.ndarray
        bool ``[S, T]``: True on real trials (a prefix of each row).
    sessions : numpy.ndarray
        The session labels, sorted, ``[S]``.
    n_arms : int
    """

    choices: np.ndarray
    rewards: np.ndarray
    mask: np.ndarray
    sessions: np.ndarray
    n_arms: int

    @property
    def n_sessions(self) -> int:
        return int(self.choices.shape[0])

    @property
    def n_trials(self) -> np.ndarray:
        """Number of real trials per session, int64 ``[S]``."""
        return self.mask.sum(1).astype(np.int64)

    def subset(self, index: np.ndarray) -> ChoiceArrays:
        """The sessions at positions ``index`` (repeats allowed)."""
        return ChoiceArrays(
            self.choices[index],
            self.rewards[index],
            self.mask[index],
            self.sessions[index],
            self.n_arms,
        )


def choice_arrays(data: ChoiceData | ChoiceArrays, n_arms: int | None = None) -> ChoiceArrays:
    """Validate choice data (:func:`validate_choice_data`) and arrange them as ``[S, T]``.

    Sessions of different lengths are padded at the end to the longest one; ``mask`` marks
    the real trials and the likelihood ignores the rest.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"session": ["a", "a", "b"], "trial": [0, 1, 0],
    ...                    "choice": [1, 0, 1], "reward": [1.0, 0.0, 1.0]})
    >>> arr = choice_arrays(df)
    >>> arr.choices.tolist(), arr.mask.tolist(), arr.sessions.tolist()
    ([[1, 0], [1, 0]], [[True, True], [True, False]], ['a', 'b'])
    """
    if isinstance(data, ChoiceArrays):
        if n_arms is not None and n_arms != data.n_arms:
            raise ValueError(f"n_arms = {n_arms} disagrees with the data's n_arms = {data.n_arms}")
        return data
    df = validate_choice_data(data, n_arms)
    labels, s_idx = np.unique(df["session"].to_numpy(), return_inverse=True)
    first = df.groupby(s_idx, sort=True)["trial"].transform("min").to_numpy()
    t_idx = df["trial"].to_numpy() - first
    S, T = len(labels), int(t_idx.max()) + 1
    choices = np.zeros((S, T), np.int64)
    rewards = np.zeros((S, T))
    mask = np.zeros((S, T), bool)
    choices[s_idx, t_idx] = df["choice"].to_numpy()
    rewards[s_idx, t_idx] = df["reward"].to_numpy()
    mask[s_idx, t_idx] = True
    return ChoiceArrays(choices, rewards, mask, labels, int(df.attrs["n_arms"]))
