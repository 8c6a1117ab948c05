"""PCA (pooled and per condition) and the participation ratio."""

import numpy as np
import pandas as pd
import pytest

import neurosim
from analyses._dynamics import compute_pca, participation_ratio


def synthetic(seed=0, b=12, t=9, n=5):
    """Trials of three coherences (and two choices) with padding: trial i is valid for its length."""
    rng = np.random.default_rng(seed)
    coh = np.array([0.0, 0.5, 1.0] * (b // 3))
    choice = np.arange(b) % 2
    time = np.arange(t)
    drift = rng.normal(size=n)
    state = (coh[:, None, None] * drift * time[None, :, None] / t) + 0.1 * rng.normal(
        size=(b, t, n)
    )
    lengths = np.where(coh == 1.0, t - 3, t)
    lengths[0] = 4  # one short zero-coherence trial
    valid = time[None, :] < lengths[:, None]
    state = np.where(valid[..., None], state, 1e3).astype(np.float32)  # padding must be ignored
    z = np.zeros((b, t, 2), np.float32)
    return neurosim.build_trajectories(
        state=state,
        inputs=z,
        outputs=z,
        targets=np.zeros((b, t), int),
        mask=valid.astype(np.float32),
        valid=valid,
        dt=20.0,
        trials=pd.DataFrame(
            {"coherence": coh, "choice": choice, "label": np.where(choice, "R", "L")}
        ),
        unit_coords={"module": ["rnn"] * n},
    )


def manual_pca(samples):
    mean = samples.mean(0)
    lam, vec = np.linalg.eigh(np.cov(samples, rowvar=False))
    return mean, lam[::-1], vec[:, ::-1].T


class TestParticipationRatio:
    def test_one_dimension_and_isotropic(self):
        rng = np.random.default_rng(0)
        line = rng.normal(size=(500, 1)) * np.array([[1.0, 2.0, -1.0]])
        assert participation_ratio(line) == pytest.approx(1.0)
        assert participation_ratio(np.eye(3)) == pytest.approx(2.0)
        assert participation_ratio(rng.normal(size=(20000, 4))) == pytest.approx(4.0, rel=0.02)

    def test_bad_shape(self):
        with pytest.raises(ValueError, match="2-D"):
            participation_ratio(np.zeros(5))


class TestComputePCAPooled:
    def test_matches_manual_pca_on_valid_steps(self):
        ds = synthetic()
        pca = compute_pca(ds, n_components=3)
        samples = ds.state.values[ds.valid.values].astype(np.float64)
        mean, lam, vec = manual_pca(samples)
        np.testing.assert_allclose(pca["mean"].values, mean, rtol=1e-10)
        np.testing.assert_allclose(pca.explained_variance.values, lam[:3], rtol=1e-8)
        np.testing.assert_allclose(pca.explained_variance_ratio.values, lam[:3] / lam.sum())
        np.testing.assert_allclose(np.abs(pca.components.values @ vec[:3].T), np.eye(3), atol=1e-8)
        assert pca.attrs["participation_ratio"] == pytest.approx(lam.sum() ** 2 / np.sum(lam**2))
        assert "condition" not in pca.dims and "by" not in pca.attrs

    def test_projection_is_nan_on_padding(self):
        ds = synthetic()
        pca = compute_pca(ds, n_components=2)
        proj = pca.projection.values
        valid = ds.valid.values
        assert np.isnan(proj[~valid]).all() and np.isfinite(proj[valid]).all()
        x = ds.state.values[valid].astype(np.float64)
        np.testing.assert_allclose(
            proj[valid], (x - pca["mean"].values) @ pca.components.values.T, atol=1e-8
        )
        assert pca.projection.dims == ("trial", "time", "component")
        assert "coherence" in pca.projection.coords

    def test_bad_arguments(self):
        ds = synthetic()
        with pytest.raises(ValueError, match=r"n_components must be in \[1, 5\]"):
            compute_pca(ds, n_components=6)
        with pytest.raises(KeyError, match="not in dataset"):
            compute_pca(ds, variable="rates")


class TestComputePCAByCondition:
    def test_condition_averages_match_a_groupby_mean(self):
        ds = synthetic()
        pca = compute_pca(ds, n_components=2, by="coherence")
        manual = ds.state.where(ds.valid).astype(np.float64).groupby("coherence").mean("trial")
        np.testing.assert_allclose(
            pca.condition_average.values, manual.values, rtol=1e-10, equal_nan=True
        )
        np.testing.assert_array_equal(pca.condition.values, [0.0, 0.5, 1.0])
        np.testing.assert_array_equal(pca.condition_coherence.values, [0.0, 0.5, 1.0])
        np.testing.assert_array_equal(pca.n_trials.values, [4, 4, 4])
        # coherence 1 trials end 3 steps early: no average (NaN) there
        assert np.isnan(pca.condition_average.values[2, -3:]).all()
        assert np.isfinite(pca.condition_average.values[:2]).all()  # short trial 0: others valid

    def test_pca_is_fitted_on_condition_averages(self):
        ds = synthetic()
        pca = compute_pca(ds, n_components=3, by="coherence")
        avg = pca.condition_average.values
        has = np.isfinite(avg).all(-1)
        mean, lam, vec = manual_pca(avg[has])
        np.testing.assert_allclose(pca["mean"].values, mean, rtol=1e-10)
        np.testing.assert_allclose(pca.explained_variance.values, lam[:3], rtol=1e-8)
        np.testing.assert_allclose(pca.explained_variance_ratio.values, lam[:3] / lam.sum())
        np.testing.assert_allclose(np.abs(pca.components.values @ vec[:3].T), np.eye(3), atol=1e-8)
        cproj = pca.condition_projection.values
        assert pca.condition_projection.dims == ("condition", "time", "component")
        np.testing.assert_allclose(cproj[has], (avg[has] - mean) @ pca.components.values.T)
        assert np.isnan(cproj[~has]).all()
        assert np.isnan(pca.projection.values[~ds.valid.values]).all()
        pooled = compute_pca(ds, n_components=3)
        assert not np.allclose(pooled.explained_variance.values, pca.explained_variance.values)

    def test_several_names(self):
        ds = synthetic()
        pca = compute_pca(ds, n_components=2, by=["coherence", "label"])
        assert pca.sizes["condition"] == 6
        np.testing.assert_array_equal(pca.condition.values, np.arange(6))
        np.testing.assert_array_equal(pca.condition_coherence.values, np.repeat([0.0, 0.5, 1.0], 2))
        np.testing.assert_array_equal(pca.condition_label.values, ["L", "R"] * 3)
        np.testing.assert_array_equal(pca.n_trials.values, [2] * 6)
        sel = (ds.coherence.values == 0.5) & (ds.label.values == "R")
        np.testing.assert_allclose(
            pca.condition_average.values[3],
            ds.state.values[sel].astype(np.float64).mean(0),
            rtol=1e-10,
        )
        assert pca.attrs["by"] == '["coherence", "label"]'

    def test_valid_only_false_averages_padding_too(self):
        ds = synthetic()
        pca = compute_pca(ds, n_components=2, by="coherence", valid_only=False)
        np.testing.assert_allclose(
            pca.condition_average.values[2],
            ds.state.values[ds.coherence.values == 1.0].mean(0),
            rtol=1e-6,
        )

    @pytest.mark.parametrize("by", ["coh", ["coherence", "nope"]])
    def test_unknown_name_lists_the_trial_coordinates(self, by):
        with pytest.raises(
            ValueError,
            match=r"not a trial coordinate; available: \['choice', 'coherence', 'label'\]",
        ):
            compute_pca(synthetic(), by=by)

    def test_bad_by_type(self):
        with pytest.raises(ValueError, match="by must be a trial coordinate name"):
            compute_pca(synthetic(), by=[])
