"""Summary statistics over seeds: mean with a Student-t confidence interval."""

from __future__ import annotations

import numpy as np
import pandas as pd


def mean_ci(
    values: np.ndarray, axis: int = -1, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, confidence-interval half-width (Student t) and count over ``axis``, ignoring NaN.

    The half-width is NaN where fewer than two finite values remain.

    Parameters
    ----------
    values : array_like
    axis : int, default -1
    confidence : float, default 0.95

    Returns
    -------
    mean, half_width, count : numpy.ndarray

    Examples
    --------
    >>> m, h, k = mean_ci([1.0, 2.0, 3.0, np.nan])
    >>> float(m), round(float(h), 3), int(k)  # t(0.975, 2) · 1 / √3
    (2.0, 2.484, 3)
    """
    from scipy import stats

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    v = np.asarray(values, dtype=np.float64)
    k = np.isfinite(v).sum(axis=axis)
    total = np.where(np.isfinite(v), v, 0.0).sum(axis=axis)
    mean = np.where(k > 0, total / np.maximum(k, 1), np.nan)
    dev = np.where(np.isfinite(v), v - np.expand_dims(mean, axis), 0.0)
    sd = np.sqrt((dev**2).sum(axis=axis) / np.maximum(k - 1, 1))
    t = stats.t.ppf(0.5 + confidence / 2, np.maximum(k - 1, 1))
    half = t * sd / np.sqrt(np.maximum(k, 1))
    return mean, np.where(k > 1, half, np.nan), k


def format_mean_ci(mean: float, half: float, digits: int = 3) -> str:
    """``"m ± h"`` with ``digits`` decimals (``"m"`` without an interval, ``"-"`` for NaN).

    Examples
    --------
    >>> format_mean_ci(0.91234, 0.0123, 2), format_mean_ci(0.5, float("nan"))
    ('0.91 ± 0.01', '0.500')
    """
    if not np.isfinite(mean):
        return "-"
    if not np.isfinite(half):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def markdown_table(df: pd.DataFrame, index: bool = False) -> str:
    """A pipe table of ``df`` for reports (no ``tabulate`` dependency).

    Examples
    --------
    >>> import pandas as pd
    >>> print(markdown_table(pd.DataFrame({"a": [1], "b": ["x"]})))
    | a | b |
    |---|---|
    | 1 | x |
    """
    if index:
        df = df.reset_index()
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join(lines)
