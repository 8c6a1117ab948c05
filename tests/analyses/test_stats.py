"""mean_ci: Student-t intervals over seeds, NaN-aware."""

import numpy as np
import pytest
from scipy import stats

from analyses import format_mean_ci, mean_ci


def test_matches_scipy_t_interval():
    x = np.array([0.81, 0.9, 0.77, 0.95, 0.88])
    m, h, k = mean_ci(x)
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert k == 5 and m == pytest.approx(x.mean())
    assert h == pytest.approx((hi - lo) / 2)


def test_nan_is_ignored_and_one_value_has_no_interval():
    m, h, k = mean_ci(np.array([[1.0, np.nan, 3.0], [2.0, np.nan, np.nan]]), axis=1)
    np.testing.assert_array_equal(k, [2, 1])
    np.testing.assert_allclose(m, [2.0, 2.0])
    assert np.isfinite(h[0]) and np.isnan(h[1])


def test_axis_and_confidence():
    x = np.random.default_rng(0).normal(size=(6, 3))
    m0, h0, _ = mean_ci(x, axis=0)
    np.testing.assert_allclose(m0, x.mean(0))
    _, h99, _ = mean_ci(x, axis=0, confidence=0.99)
    assert (h99 > h0).all()
    with pytest.raises(ValueError, match="confidence must be in"):
        mean_ci(x, confidence=95)


def test_format():
    assert format_mean_ci(np.nan, 0.1) == "-"
    assert format_mean_ci(0.5, 0.04, 1) == "0.5 ± 0.0"
