"""Spatial tuning: rate maps, autocorrelograms, gridness, spacing/orientation, HD tuning, borders.

Synthetic maps are sums of plane waves on bin centres of the 2.2 m box: three waves 60° apart
make a hexagonal lattice (spacing ``s`` needs wave number 4π / (√3 s), and the lattice axes lie
30° off the wave vectors), two waves 90° apart a square lattice (wave number 2π / s).
"""

import numpy as np
import pandas as pd
import pytest
import scipy.signal
import xarray as xr
from scipy import ndimage, special

from analyses._autocorrelograms import compute_autocorrelograms
from analyses._border import border_score
from analyses._grid import OUTER_RADII, compute_grid_scores, gridness, shuffle_threshold
from analyses._rate_maps import compute_head_direction_tuning, compute_rate_maps
from analyses.plots import plot_rate_maps
from neurosim._trajectories import build_trajectories

N = 44  # 5 cm bins in the 2.2 m box
CENTRES = (np.arange(N) + 0.5) * 2.2 / N - 1.1
X, Y = np.meshgrid(CENTRES, CENTRES)


def waves(angles, k, phase=(0.0, 0.0), x=X, y=Y):
    return sum(
        np.cos(k * ((x - phase[0]) * np.cos(a) + (y - phase[1]) * np.sin(a))) for a in angles
    )


def hexagonal(spacing=0.5, orientation=0.0, phase=(0.0, 0.0), **xy):
    """Hexagonal lattice whose axes lie at ``orientation + j·60°``."""
    angles = orientation + np.pi / 6 + np.arange(3) * np.pi / 3
    return waves(angles, 4 * np.pi / (np.sqrt(3) * spacing), phase, **xy)


def square(spacing=0.5, orientation=0.0, phase=(0.0, 0.0)):
    return waves(orientation + np.arange(2) * np.pi / 2, 2 * np.pi / spacing, phase)


def bump(cx=0.0, cy=0.0, width=0.2):
    return np.exp(-((X - cx) ** 2 + (Y - cy) ** 2) / (2 * width**2))


def labelled(maps):
    maps = np.asarray(maps)[None] if np.ndim(maps) == 2 else np.asarray(maps)
    return xr.DataArray(maps, dims=("unit", "y", "x"), coords={"x": CENTRES, "y": CENTRES})


def circular_difference(a, b, period):
    return np.abs((np.asarray(a) - b + period / 2) % period - period / 2)


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(0)


class TestComputeRateMaps:
    def test_matches_a_per_unit_histogram_with_x_along_columns(self, rng):
        pos = rng.uniform(-1.1, 1.1, (5000, 2))
        act = rng.random((5000, 3))
        maps = compute_rate_maps(act, pos, n_bins=10)
        edges = np.linspace(-1.1, 1.1, 11)
        occ = np.histogram2d(pos[:, 1], pos[:, 0], bins=[edges, edges])[0]
        for u in range(3):
            tot = np.histogram2d(pos[:, 1], pos[:, 0], bins=[edges, edges], weights=act[:, u])[0]
            np.testing.assert_allclose(maps.rate_map[u].values, tot / occ, rtol=1e-12)
        np.testing.assert_array_equal(maps.occupancy.values, occ)
        assert maps.rate_map.dims == ("unit", "y", "x")
        np.testing.assert_allclose(maps.x.values, (edges[:-1] + edges[1:]) / 2)
        assert maps.x.attrs["units"] == "m" and maps.attrs["n_samples"] == 5000

    def test_occupancy_normalisation_recovers_the_rate_function_under_uneven_dwell(self, rng):
        # dwell density ∝ (x + 1.1)(y + 1.1): the corners' occupancies differ 400-fold
        pos = 2.2 * rng.beta([2.0, 2.0], [1.0, 1.0], size=(400_000, 2)) - 1.1

        def f(x, y):
            return 1.0 + 0.5 * np.sin(1.2 * x) * np.cos(y)

        act = np.stack([f(*pos.T), f(*pos.T) + rng.normal(0, 0.1, len(pos))], 1)
        maps = compute_rate_maps(act, pos, n_bins=11)
        truth = f(*np.meshgrid(maps.x.values, maps.y.values))
        occ = maps.occupancy.values
        assert occ.max() / occ.min() > 100
        # within a bin the samples crowd towards the denser side: up to ~0.012 of bias here
        np.testing.assert_allclose(maps.rate_map[0].values, truth, atol=0.02)
        np.testing.assert_allclose(maps.rate_map[1].values, truth, atol=0.04)
        # activity summed without dividing by the dwell is nowhere near the rate function
        assert np.abs(occ * truth / occ.mean() - truth).max() > 1.0

    def test_smoothing_keeps_a_constant_rate_constant_and_unvisited_bins_nan(self, rng):
        pos = rng.uniform([-1.1, -1.1], [0.0, 1.1], (20000, 2))  # left half only
        maps = compute_rate_maps(np.full((20000, 1), 3.0), pos, n_bins=10, smoothing_sigma=2.0)
        rate = maps.rate_map[0].values
        assert np.isnan(rate[:, 5:]).all() and np.isfinite(rate[:, :5]).all()
        np.testing.assert_allclose(rate[:, :5], 3.0, rtol=1e-12)

    def test_min_occupancy_and_circular_arena(self, rng):
        pos = rng.uniform(-1.1, 1.1, (3000, 2))
        maps = compute_rate_maps(np.ones((3000, 1)), pos, n_bins=20, min_occupancy=8)
        np.testing.assert_array_equal(np.isnan(maps.rate_map[0]), maps.occupancy < 8)
        circ = compute_rate_maps(np.ones((3000, 1)), pos, n_bins=20, arena="circle")
        gx, gy = np.meshgrid(circ.x, circ.y)
        outside = np.hypot(gx, gy) > 1.1
        assert np.isnan(circ.rate_map[0].values[outside]).all()
        assert np.isfinite(circ.rate_map[0].values[~outside]).all()
        assert circ.attrs["arena"] == "circle"

    def test_dataset_pools_valid_steps_of_all_trials(self, rng):
        b, t, n = 4, 50, 3
        pos = rng.uniform(-1.1, 1.1, (b, t, 2))
        state = rng.random((b, t, n)).astype(np.float32)
        valid = np.ones((b, t), bool)
        valid[:, 40:] = False
        pos[:, 40:] = 9.0  # padding far outside the arena: must be left out
        ds = build_trajectories(
            state=state,
            inputs=np.zeros((b, t, 1), np.float32),
            outputs=np.zeros((b, t, 1), np.float32),
            targets=np.zeros((b, t), int),
            mask=np.ones((b, t), np.float32),
            valid=valid,
            dt=20.0,
            trials=pd.DataFrame({"k": range(b)}),
            unit_coords={"module": ["a", "a", "b"]},
            covariates={"position": pos},
        )
        maps = compute_rate_maps(ds, n_bins=8)
        flat = compute_rate_maps(state[:, :40].reshape(-1, n), pos[:, :40].reshape(-1, 2), n_bins=8)
        np.testing.assert_allclose(maps.rate_map.values, flat.rate_map.values, rtol=1e-6)
        assert list(maps.module.values) == ["a", "a", "b"]
        assert maps.attrs["n_samples"] == b * 40
        # the same through DataArrays, and a covariate given by name
        via_da = compute_rate_maps(
            ds.state.where(ds.valid).fillna(0.0), ds.position.where(ds.valid)
        )
        assert via_da.attrs["n_samples"] == b * 40
        ds = ds.rename({"position": "xy"})
        assert compute_rate_maps(ds, "xy", n_bins=8).rate_map.shape == (n, 8, 8)

    def test_positions_broadcast_over_conditions_and_nonfinite_samples_are_dropped(self, rng):
        state = xr.DataArray(rng.random((2, 3, 50, 4)), dims=("condition", "trial", "time", "unit"))
        pos = xr.DataArray(
            rng.uniform(-1, 1, (3, 50, 2)),
            dims=("trial", "time", "space"),
            coords={"space": ["x", "y"]},
        )
        maps = compute_rate_maps(state, pos, n_bins=5)
        assert maps.attrs["n_samples"] == 2 * 3 * 50
        swapped = compute_rate_maps(state, pos.isel(space=[1, 0]), n_bins=5)  # labels say which
        np.testing.assert_array_equal(swapped.rate_map.values, maps.rate_map.values)
        holes = state.copy()
        holes[0, 0, :10, 1] = np.nan
        assert compute_rate_maps(holes, pos, n_bins=5).attrs["n_samples"] == 290
        with pytest.raises(ValueError, match="every sample with a finite position has non-finite"):
            compute_rate_maps(state * np.nan, pos)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"n_bins": 1}, "n_bins must be an integer >= 2; got 1"),
            ({"n_bins": 2.5}, "n_bins must be an integer >= 2; got 2.5"),
            ({"smoothing_sigma": -1.0}, "smoothing_sigma must be a number >= 0; got -1.0"),
            ({"min_occupancy": 0}, "min_occupancy must be an integer >= 1; got 0"),
            ({"arena": "hexagon"}, "arena must be 'square' or 'circle'; got 'hexagon'"),
            ({"arena_size": 0.0}, "arena_size must be > 0"),
            (
                {"bounds": ((1, 0), (0, 1))},
                r"bounds must be \(\(x_min, x_max\), \(y_min, y_max\)\)",
            ),
            (
                {"bounds": ((0, 1), (0, 1))},
                r"positions fall outside bounds=\[\[0.0, 1.0\], \[0.0, 1.0\]\]: x spans \(-",
            ),
        ],
    )
    def test_bad_arguments_name_the_field_and_value(self, kwargs, message):
        pos = np.random.default_rng(1).uniform(-1.0, 1.0, (100, 2))
        with pytest.raises(ValueError, match=message):
            compute_rate_maps(np.ones((100, 2)), pos, **kwargs)

    def test_bad_shapes_and_names(self):
        with pytest.raises(
            ValueError, match=r"positions must have shape \(100, 2\).*got \(100, 3\)"
        ):
            compute_rate_maps(np.ones((100, 2)), np.zeros((100, 3)))
        with pytest.raises(ValueError, match=r"activity must be 2-D \[samples, units\].*\(100,\)"):
            compute_rate_maps(np.ones(100), np.zeros((100, 2)))
        with pytest.raises(ValueError, match="positions must be an array"):
            compute_rate_maps(np.ones((100, 2)))
        ds = xr.Dataset({"state": (("trial", "time", "unit"), np.ones((2, 3, 4)))})
        with pytest.raises(KeyError, match="covariate 'position' not in dataset"):
            compute_rate_maps(ds)
        with pytest.raises(KeyError, match="variable 'rates' not in dataset"):
            compute_rate_maps(ds, variable="rates")


def direct_autocorrelogram(m):
    """The reference's NaN-aware autocorrelogram by direct 2-D correlation."""
    ones = np.isfinite(m).astype(float)
    x = np.nan_to_num(m)

    def xcorr(a, b):
        return scipy.signal.correlate2d(b, a, mode="full")

    n = xcorr(ones, ones)
    s1, s2 = xcorr(x, ones), xcorr(ones, x)
    v1 = n * xcorr(x * x, ones) - s1**2
    v2 = n * xcorr(ones, x * x) - s2**2
    good = (n >= 2) & (v1 > 1e-6) & (v2 > 1e-6)
    r = np.zeros_like(n)
    r[good] = (n * xcorr(x, x) - s1 * s2)[good] / np.sqrt(v1 * v2)[good]
    return r, good


class TestAutocorrelograms:
    def test_matches_the_direct_computation_with_unvisited_bins(self, rng):
        m = ndimage.gaussian_filter(rng.normal(size=(15, 17)), 1.0)
        m[rng.random(m.shape) < 0.2] = np.nan
        sac = compute_autocorrelograms(m)
        ref, good = direct_autocorrelogram(m)
        assert sac.shape == (1, 29, 33) and good.mean() > 0.9
        np.testing.assert_allclose(sac[0].values[good], ref[good], atol=1e-9)
        np.testing.assert_allclose(sac[0].values, sac[0].values[::-1, ::-1], atol=1e-12)
        assert float(sac.sel(lag_x=0, lag_y=0)) == pytest.approx(1.0)

    def test_lags_in_metres_and_unit_coords_kept(self):
        maps = compute_rate_maps(np.ones((2, 3)), np.zeros((2, 2)), n_bins=4).rate_map
        sac = compute_autocorrelograms(maps.fillna(1.0) + np.arange(16).reshape(4, 4))
        np.testing.assert_allclose(sac.lag_x.values, np.arange(-3, 4) * 0.55)
        assert sac.lag_x.attrs["units"] == "m" and list(sac.unit.values) == [0, 1, 2]


def reference_scores(rate_map):
    """DeepMind's GridScorer (Banino et al. 2018, Sorscher et al. 2019), loop by loop."""
    n = rate_map.shape[0]
    ones = np.isfinite(rate_map).astype(float)
    x = np.nan_to_num(rate_map)

    def xcorr(a, b):
        return scipy.signal.convolve2d(b, np.rot90(a, 2), mode="full")

    with np.errstate(all="ignore"):
        cnt = xcorr(ones, ones)
        s1, s2 = xcorr(x, ones), xcorr(ones, x)
        sd1 = np.sqrt(xcorr(x * x, ones) / cnt - s1**2 / cnt**2)
        sd2 = np.sqrt(xcorr(ones, x * x) / cnt - s2**2 / cnt**2)
        sac = np.nan_to_num((xcorr(x, x) / cnt - s1 * s2 / cnt**2) / (sd1 * sd2))
    grid = np.linspace(-(n - 1), n - 1, 2 * n - 1)
    r = np.hypot(grid[None, :], grid[:, None])
    angles = (30, 45, 60, 90, 120, 135, 150)
    rotated = {a: ndimage.rotate(sac, a, reshape=False) for a in angles}
    best60 = best90 = -np.inf
    for outer in np.linspace(0.4, 1.0, 10):
        mask = ((r <= outer * n) & ~(r <= 0.2 * n)).astype(float)
        area = mask.sum()
        mean = (sac * mask).sum() / area
        centred = (sac * mask - mean) * mask
        var = (centred**2).sum() / area + 1e-5
        c = {a: (centred * (rotated[a] - mean) * mask).sum() / area / var for a in angles}
        best60 = max(best60, (c[60] + c[120]) / 2 - (c[30] + c[90] + c[150]) / 3)
        best90 = max(best90, c[90] - (c[45] + c[135]) / 2)
    return best60, best90


class TestGridness:
    def test_matches_the_reference_scorer(self, rng):
        noisy = ndimage.gaussian_filter(rng.normal(size=(20, 20)), 1.0)
        noisy[rng.random((20, 20)) < 0.15] = np.nan
        hexa = hexagonal(0.45, 0.3, (0.2, 0.1))[::2, ::2]
        for m in (noisy, hexa, square(0.6, 0.1)[::2, ::2], rng.normal(size=(25, 25))):
            np.testing.assert_allclose(gridness(m), reference_scores(m), atol=1e-9)

    def test_hexagonal_lattices_score_high_on_score60(self, rng):
        # measured over spacings 0.4-0.8 m, random orientations and phases: >= 1.07 at 5 cm
        # bins (>= 1.00 at the default 11 cm); smoothed noise reaches 0.38 at its 95th percentile
        scores = np.array(
            [
                gridness(hexagonal(s, rng.uniform(0, np.pi), rng.uniform(-1, 1, 2)))
                for s in (0.4, 0.5, 0.6, 0.8)
                for _ in range(3)
            ]
        )
        assert scores[:, 0].min() > 1.0
        assert scores[:, 1].max() < 0.7

    def test_square_lattices_score_low_on_score60_and_high_on_score90(self, rng):
        scores = np.array(
            [gridness(square(s, rng.uniform(0, np.pi), rng.uniform(-1, 1, 2))) for s in (0.4, 0.6)]
        )
        assert (scores[:, 0] < -0.2).all() and (scores[:, 1] > 0.9).all()

    def test_noise_scores_near_zero(self, rng):
        scores = np.array([gridness(rng.normal(size=(N, N))) for _ in range(20)])
        assert np.abs(scores.mean(0)).max() < 0.1
        assert np.abs(scores).max() < 0.3

    @pytest.mark.parametrize(
        ("cx", "cy", "width"), [(0, 0, 0.2), (0.4, -0.2, 0.3), (-0.7, 0.6, 0.15)]
    )
    def test_a_single_bump_has_score60_near_zero(self, cx, cy, width):
        assert abs(gridness(bump(cx, cy, width))[0]) < 0.2

    def test_square_arena_symmetry_lifts_score90_of_a_bump_unless_the_arena_is_circular(self):
        # documented: lags are correlated over the overlap of the map with its shifted copy,
        # whose shape has the square's 4-fold symmetry
        m = bump(width=0.1)
        assert gridness(m)[1] > 0.5
        m[np.hypot(X, Y) > 1.1] = np.nan
        assert abs(gridness(m)[1]) < 0.1

    def test_rot90_leaves_the_scores_unchanged(self, rng):
        for m in (hexagonal(0.55, 0.3, (0.1, 0.2)), rng.normal(size=(N, N)), square(0.5, 0.2)):
            np.testing.assert_allclose(gridness(np.rot90(m)), gridness(m), atol=1e-9)
            np.testing.assert_allclose(gridness(np.rot90(m, 3)), gridness(m), atol=1e-9)

    def test_rotating_the_pattern_by_any_angle_leaves_the_scores_nearly_unchanged(self):
        hex_scores = np.array([gridness(hexagonal(0.5, a)) for a in np.linspace(0, np.pi / 3, 7)])
        sq_scores = np.array([gridness(square(0.5, a)) for a in np.linspace(0, np.pi / 2, 7)])
        assert np.ptp(hex_scores[:, 0]) < 0.05 and np.ptp(sq_scores[:, 1]) < 0.1

    def test_an_autocorrelogram_gives_the_same_scores(self):
        m = hexagonal(0.5, 0.4)
        sac = compute_autocorrelograms(m)[0]
        assert gridness(sac) == gridness(m)
        assert gridness(sac.values, kind="autocorrelogram") == gridness(m)

    def test_flat_and_empty_maps_are_nan(self):
        assert np.isnan(gridness(np.ones((10, 10)))).all()
        assert np.isnan(gridness(np.full((10, 10), np.nan))).all()

    def test_bad_arguments(self):
        with pytest.raises(
            ValueError, match="kind must be 'auto', 'rate_map' or 'autocorrelogram'; got 'sac'"
        ):
            gridness(np.ones((5, 5)), kind="sac")
        with pytest.raises(ValueError, match=r"outer_radii must be numbers > inner_radius \(0.2\)"):
            gridness(np.ones((5, 5)), outer_radii=[0.1])
        with pytest.raises(ValueError, match="gridness scores one map; got 2"):
            gridness(np.ones((2, 5, 5)))
        with pytest.raises(ValueError, match=r"odd sides.*\(4, 4\)"):
            gridness(np.ones((4, 4)), kind="autocorrelogram")
        with pytest.raises(ValueError, match="infinite"):
            gridness(np.full((5, 5), np.inf))


class TestComputeGridScores:
    def test_spacing_and_orientation_are_recovered(self, rng):
        spacing = np.array([0.35, 0.5, 0.65, 0.8])
        orientation = np.array([0.0, 0.3, 0.75, 1.0])
        maps = labelled(
            [
                hexagonal(s, o, rng.uniform(-1, 1, 2))
                for s, o in zip(spacing, orientation, strict=True)
            ]
        )
        scores = compute_grid_scores(maps)
        np.testing.assert_allclose(scores.spacing, spacing, atol=0.05 / 5)  # a fifth of a bin
        assert circular_difference(scores.orientation, orientation, np.pi / 3).max() < np.deg2rad(1)
        assert scores.spacing.attrs["units"] == "m"
        assert ((scores.orientation >= 0) & (scores.orientation < np.pi / 3)).all()

    def test_scores_match_gridness_and_the_best_annulus_is_one_of_the_annuli(self, rng):
        maps = np.stack([hexagonal(0.6), square(0.5), rng.normal(size=(N, N))])
        scores = compute_grid_scores(maps)
        for u in range(3):
            np.testing.assert_allclose(
                gridness(maps[u]), [scores.score60[u], scores.score90[u]], rtol=1e-12
            )
        assert set(scores.annulus60.values) <= set(OUTER_RADII)
        assert scores.spacing.attrs["units"] == "bins"
        np.testing.assert_allclose(scores.spacing[0], 0.6 / 0.05, atol=0.2)

    def test_flat_and_empty_maps_give_nan_not_errors(self):
        maps = np.stack([hexagonal(), np.full((N, N), np.nan), np.zeros((N, N))])
        scores = compute_grid_scores(maps)
        assert np.isfinite(scores.score60[0]) and np.isnan(scores.score60[1:]).all()
        assert np.isnan(scores.spacing[1:]).all() and np.isnan(scores.border_score[1:]).all()

    def test_border_scores_are_included_and_nan_for_circular_arenas(self):
        maps = labelled(np.stack([np.exp(-(((X + 1.1) / 0.15) ** 2)), bump()]))
        scores = compute_grid_scores(maps)
        np.testing.assert_allclose(scores.border_score, [border_score(m) for m in maps])
        assert scores.border_score[0] > 0.5 > -0.5 > scores.border_score[1]
        maps.attrs["arena"] = "circle"
        assert np.isnan(compute_grid_scores(maps).border_score).all()


class TestShuffleThreshold:
    @pytest.fixture(scope="class")
    def noise(self):
        return ndimage.gaussian_filter(np.random.default_rng(3).normal(size=(100, N, N)), (0, 1, 1))

    def test_seeded(self, noise):
        t = shuffle_threshold(noise, n_shuffles=40, seed=1)
        assert t == shuffle_threshold(noise, n_shuffles=40, seed=1)
        assert t != shuffle_threshold(noise, n_shuffles=40, seed=2)

    def test_lies_among_the_scores_of_noise_maps_and_far_below_grids(self, noise):
        t = shuffle_threshold(noise, n_shuffles=100, seed=0)
        noise_scores = compute_grid_scores(noise).score60.values
        assert np.percentile(noise_scores, 75) < t < noise_scores.max()
        assert (noise_scores > t).mean() < 0.15
        grids = np.stack([hexagonal(s, 0.2 * s) for s in (0.4, 0.5, 0.6)])
        assert (compute_grid_scores(grids).score60 > t).all()
        assert t < 0.7

    def test_bad_arguments(self, noise):
        with pytest.raises(ValueError, match="percentile must be in \\[0, 100\\]; got 101"):
            shuffle_threshold(noise, percentile=101)
        with pytest.raises(ValueError, match="n_shuffles must be an integer >= 1; got 0"):
            shuffle_threshold(noise, n_shuffles=0)
        with pytest.raises(ValueError, match="no map with two distinct finite values"):
            shuffle_threshold(np.ones((2, 5, 5)))


class TestHeadDirectionTuning:
    @pytest.mark.parametrize("kappa", [0.5, 2.0, 8.0])
    def test_von_mises_tuning_gives_the_preferred_direction_and_i1_over_i0(self, kappa):
        rng = np.random.default_rng(4)
        hd = rng.vonmises(0.5, 1.0, 400_000)  # uneven occupancy: the animal prefers 0.5 rad
        mu = np.array([-2.5, 0.0, 1.2, 3.0])
        act = np.exp(kappa * np.cos(hd[:, None] - mu))
        tc = compute_head_direction_tuning(act, hd, n_bins=72)
        assert circular_difference(tc.preferred_direction, mu, 2 * np.pi).max() < np.deg2rad(1)
        expected = special.i1(kappa) / special.i0(kappa)
        np.testing.assert_allclose(tc.vector_length, expected, atol=0.005)
        assert tc.tuning.dims == ("unit", "angle") and tc.angle.attrs["units"] == "rad"

    def test_flat_tuning_has_a_short_vector(self, rng):
        hd = rng.uniform(-10, 10, 100_000)  # any angle: wrapped
        tc = compute_head_direction_tuning(np.ones((100_000, 1)), hd, smoothing_sigma=1.0)
        assert float(tc.vector_length[0]) < 1e-12
        np.testing.assert_allclose(tc.tuning, 1.0, rtol=1e-12)
        assert tc.occupancy.sum() == 100_000

    def test_dataset_covariate_and_zero_activity(self, rng):
        hd = rng.uniform(-np.pi, np.pi, (3, 200))
        ds = xr.Dataset(
            {
                "state": (("trial", "time", "unit"), np.stack([np.cos(hd) + 1, 0 * hd], -1)),
                "head_direction": (("trial", "time"), hd),
            }
        )
        tc = compute_head_direction_tuning(ds, n_bins=12)
        assert abs(float(tc.preferred_direction[0])) < 0.1 and np.isnan(tc.vector_length[1])

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="n_bins must be an integer >= 3; got 2"):
            compute_head_direction_tuning(np.ones((10, 1)), np.zeros(10), n_bins=2)
        with pytest.raises(ValueError, match=r"head_direction must have shape \(10,\)"):
            compute_head_direction_tuning(np.ones((10, 1)), np.zeros((10, 2)))


class TestBorderScore:
    def test_a_wall_field_scores_high_and_a_central_field_low(self):
        for wall in (np.exp(-(((X + 1.1) / 0.15) ** 2)), np.exp(-(((1.1 - Y) / 0.15) ** 2))):
            assert border_score(labelled(wall)[0]) > 0.8
        assert border_score(bump(0, 0, 0.2)) == pytest.approx(-1.0)
        assert -1.0 < border_score(bump(0.8, 0.0, 0.2)) < 0.0  # touches a wall only briefly

    def test_small_fields_are_left_out(self):
        m = np.zeros((N, N))
        m[0, :3] = 1.0  # 3 bins of 25 cm² along a wall: 75 cm² < 200 cm²
        assert np.isnan(border_score(labelled(m)[0]))
        assert np.isnan(border_score(m, bin_size=0.05))
        assert border_score(m) > 0  # no bin size: every field counts

    def test_unvisited_wall_bins_do_not_count(self):
        m = np.exp(-(((X + 1.1) / 0.15) ** 2))
        m[N // 2 :, :] = np.nan  # the upper half is unvisited: the field still covers the wall
        full = border_score(np.exp(-(((X + 1.1) / 0.15) ** 2)))
        assert border_score(m) == pytest.approx(full, abs=0.02)
        with pytest.raises(ValueError, match="field_threshold must be a number >= 0; got -0.1"):
            border_score(m, field_threshold=-0.1)


def test_plot_rate_maps_shows_the_top_units_by_score60(tmp_path):
    maps = labelled(np.stack([bump(), hexagonal(0.5), square(0.5), hexagonal(0.7)]))
    scores = compute_grid_scores(maps)
    fig = plot_rate_maps(maps, scores, top=3, path=tmp_path / "maps.png")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert [t.split("\n")[0] for t in titles] == ["unit 3", "unit 1", "unit 0"]
    assert len([ax for ax in fig.axes if ax.images]) == 6  # a map and its autocorrelogram each
    assert (tmp_path / "maps.png").stat().st_size > 0
    fig = plot_rate_maps(maps, autocorr=False)
    assert len([ax for ax in fig.axes if ax.images]) == 4
