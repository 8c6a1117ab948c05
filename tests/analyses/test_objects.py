"""Object readout: ARI against scikit-learn and pair counting, phase clustering, synchrony."""

import itertools

import numpy as np
import pytest
import xarray as xr

from analyses._objects import (
    adjusted_rand_index,
    ari_bg,
    ari_fg,
    cluster_phases,
    compute_object_discovery,
    phase_synchrony,
)
from analyses._objects_plots import phase_map, plot_object_scenes
from paradigms._scenes import SceneParadigm


def _ari_pairs(t, p):
    """ARI from its definition: pairs of items, agreement of 'same cluster' in each labelling
    (Hubert & Arabie's index over pair counts; 1 when the labellings agree on every pair)."""
    t, p = list(np.ravel(t)), list(np.ravel(p))
    a = b = c = d = 0  # same/same, same/diff, diff/same, diff/diff
    for i, j in itertools.combinations(range(len(t)), 2):
        st, sp = t[i] == t[j], p[i] == p[j]
        a += st and sp
        b += st and not sp
        c += sp and not st
        d += not st and not sp
    n_pairs = a + b + c + d
    if b == 0 and c == 0:
        return 1.0
    expected = (a + b) * (a + c) / n_pairs
    maximum = ((a + b) + (a + c)) / 2
    return (a - expected) / (maximum - expected)


def _random_labellings(rng, n, n_true, n_pred):
    t = rng.integers(0, n_true, n)
    p = np.where(rng.random(n) < 0.5, t, rng.integers(0, n_pred, n))  # partly agreeing
    return t, p


# ------------------------------------------------------------------ ARI
class TestAdjustedRandIndex:
    def test_equals_the_pair_counting_definition(self):
        rng = np.random.default_rng(0)
        for n, kt, kp in [(2, 2, 2), (5, 1, 3), (17, 3, 2), (40, 4, 6), (60, 2, 9), (30, 1, 1)]:
            for _ in range(5):
                t, p = _random_labellings(rng, n, kt, kp)
                assert adjusted_rand_index(t, p) == pytest.approx(_ari_pairs(t, p), abs=1e-12)

    def test_equals_sklearn_on_random_labellings(self):
        sklearn_metrics = pytest.importorskip("sklearn.metrics")
        rng = np.random.default_rng(1)
        t = rng.integers(0, 5, (300, 200))
        p = np.where(
            rng.random((300, 200)) < rng.random((300, 1)), t, rng.integers(0, 7, (300, 200))
        )
        p[:20] = rng.integers(-3, 40, (20, 200))  # many, negative, unused labels
        t[20:30] = 0  # one true cluster
        ours = adjusted_rand_index(t, p, axis=1)
        ref = [sklearn_metrics.adjusted_rand_score(a, b) for a, b in zip(t, p, strict=True)]
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
        assert adjusted_rand_index(t, p) == pytest.approx(
            sklearn_metrics.adjusted_rand_score(t.ravel(), p.ravel()), abs=1e-12
        )

    def test_batched_over_any_axes_equals_one_at_a_time(self):
        rng = np.random.default_rng(2)
        t, p = rng.integers(0, 3, (4, 3, 6, 5)), rng.integers(0, 4, (4, 3, 6, 5))
        batched = adjusted_rand_index(t, p, axis=(-2, -1))
        assert batched.shape == (4, 3)
        for i, j in np.ndindex(4, 3):
            assert batched[i, j] == pytest.approx(_ari_pairs(t[i, j], p[i, j]), abs=1e-12)
        other = adjusted_rand_index(t, p, axis=(0, 2))
        assert other.shape == (3, 5)
        assert other[1, 2] == pytest.approx(_ari_pairs(t[:, 1, :, 2], p[:, 1, :, 2]), abs=1e-12)

    def test_chunked_contingency_tables_give_the_same_scores(self, monkeypatch):
        import analyses._ari as ari_module

        rng = np.random.default_rng(8)
        t, p = rng.integers(0, 4, (37, 30)), rng.integers(0, 5, (37, 30))
        whole = adjusted_rand_index(t, p, axis=1)
        monkeypatch.setattr(ari_module, "_MAX_CELLS", 45)  # two images of 4 x 5 cells at once
        np.testing.assert_array_equal(adjusted_rand_index(t, p, axis=1), whole)

    def test_a_renamed_labelling_scores_one_and_the_index_is_symmetric(self):
        rng = np.random.default_rng(3)
        t = rng.integers(0, 6, (10, 64))
        perm = rng.permutation(6) * 7 - 3  # any renaming of the labels
        assert (adjusted_rand_index(t, perm[t], axis=1) == 1).all()
        p = rng.integers(0, 4, (10, 64))
        np.testing.assert_allclose(
            adjusted_rand_index(t, p, axis=1), adjusted_rand_index(p, t, axis=1), atol=1e-15
        )
        # invariant to shuffling the pixels (the same way in both)
        order = rng.permutation(64)
        np.testing.assert_allclose(
            adjusted_rand_index(t[:, order], p[:, order], axis=1),
            adjusted_rand_index(t, p, axis=1),
            atol=1e-15,
        )
        # float labels work like integers
        assert adjusted_rand_index(t.astype(float) / 3, perm[t]) == 1.0

    def test_random_labels_score_about_zero(self):
        rng = np.random.default_rng(4)
        t, p = rng.integers(0, 4, (50, 4000)), rng.integers(0, 5, (50, 4000))
        ari = adjusted_rand_index(t, p, axis=1)
        assert abs(ari.mean()) < 2e-3 and np.abs(ari).max() < 0.01

    def test_known_values(self):
        assert adjusted_rand_index([0, 0, 1, 1], [0, 1, 0, 1]) == -0.5
        assert adjusted_rand_index([0, 0, 0, 0], [0, 0, 0, 0]) == 1.0
        assert adjusted_rand_index([0, 0, 0, 0], [0, 1, 2, 3]) == 0.0
        assert adjusted_rand_index([3], [1]) == 1.0

    def test_ignore_values_and_masks_equal_dropping_the_pixels(self):
        rng = np.random.default_rng(5)
        t, p = rng.integers(-1, 4, (6, 50)), rng.integers(0, 4, (6, 50))
        by_value = adjusted_rand_index(t, p, ignore=-1, axis=1)
        by_values = adjusted_rand_index(t, p, ignore=[-1, 0], axis=1)
        by_mask = adjusted_rand_index(t, p, ignore=t < 0, axis=1)
        for i in range(6):
            keep = t[i] >= 0
            assert by_value[i] == pytest.approx(_ari_pairs(t[i][keep], p[i][keep]), abs=1e-12)
            fg = t[i] > 0
            assert by_values[i] == pytest.approx(_ari_pairs(t[i][fg], p[i][fg]), abs=1e-12)
        np.testing.assert_array_equal(by_value, by_mask)
        with pytest.raises(ValueError, match="ignore"):
            adjusted_rand_index(t, p, ignore="background")

    def test_nothing_left_is_nan_and_shape_errors_are_clear(self):
        t = np.full((2, 4), -1)
        assert np.isnan(adjusted_rand_index(t, t, ignore=-1, axis=1)).all()
        with pytest.raises(ValueError, match="same shape"):
            adjusted_rand_index(np.zeros((2, 3)), np.zeros((2, 4)))
        with pytest.raises(ValueError, match="axis"):
            adjusted_rand_index(np.zeros((2, 3)), np.zeros((2, 3)), axis=2)

    def test_xarray_in_xarray_out(self):
        rng = np.random.default_rng(6)
        t = xr.DataArray(
            rng.integers(0, 3, (3, 5, 5)), dims=("image", "y", "x"), coords={"image": [7, 8, 9]}
        )
        p = rng.integers(0, 3, (3, 5, 5))
        ari = adjusted_rand_index(t, p, dim=("y", "x"))
        assert isinstance(ari, xr.DataArray) and ari.dims == ("image",) and ari.name == "ari"
        assert ari.image.values.tolist() == [7, 8, 9]
        np.testing.assert_allclose(ari.values, adjusted_rand_index(t.values, p, axis=(1, 2)))


class TestForegroundBackgroundARI:
    def test_definitions(self):
        rng = np.random.default_rng(7)
        t = rng.integers(-1, 4, (5, 2, 8, 8))
        p = rng.integers(0, 4, (5, 2, 8, 8))
        fg, bg = ari_fg(t, p), ari_bg(t, p)
        assert fg.shape == bg.shape == (5, 2)
        for i, j in np.ndindex(5, 2):
            tt, pp = t[i, j].ravel(), p[i, j].ravel()
            assert fg[i, j] == pytest.approx(_ari_pairs(tt[tt > 0], pp[tt > 0]), abs=1e-12)
            assert bg[i, j] == pytest.approx(_ari_pairs(tt[tt >= 0], pp[tt >= 0]), abs=1e-12)

    def test_background_and_overlaps_do_not_count_in_fg(self):
        t = np.array([[0, 0, 1, 1, 2, 2, -1]])
        p = np.array([[5, 1, 1, 1, 2, 2, 1]])  # background split, overlap wrong: still perfect
        assert ari_fg(t, p, axis=-1)[0] == 1.0
        assert ari_bg(t, p, axis=-1)[0] < 1.0
        assert ari_bg(t, np.array([[0, 0, 1, 1, 2, 2, 0]]), axis=-1)[0] == 1.0

    def test_xarray_defaults_to_the_last_two_dims(self):
        t = xr.DataArray(np.array([[[0, 1], [1, 2]]] * 2), dims=("image", "y", "x"))
        fg = ari_fg(t, t.values)
        assert fg.dims == ("image",) and (fg == 1).all()
        assert ari_bg(t, t).dims == ("image",)


# ------------------------------------------------------------------ clustering
def _separated_outputs(labels, rng, channels=1, noise=0.05):
    """Outputs whose phase is a distinct angle per object, background of tiny magnitude,
    overlaps of random phase: what a model that bound the objects would give."""
    angle = 2 * np.pi * np.maximum(labels, 0) / (labels.max() + 1)
    phase = angle[:, None] + rng.normal(0, noise, (labels.shape[0], channels, *labels.shape[1:]))
    phase = np.where((labels == -1)[:, None], rng.uniform(-np.pi, np.pi, phase.shape), phase)
    magnitude = np.where((labels > 0)[:, None], 1.0, 0.02) * np.ones_like(phase)
    return magnitude, phase


class TestClusterPhases:
    @pytest.mark.parametrize("pid_style", ["2shapes", "3shapes"])
    def test_perfectly_phase_separated_outputs_give_ari_one(self, pid_style):
        shapes = ("square", "triangle") if pid_style == "2shapes" else None
        task = SceneParadigm("shapes", shapes=shapes, max_overlap=0.5)
        labels = task.batch(64, rng=0).covariates["labels"][:, 0]
        assert (labels == -1).any()  # overlaps present, and left out
        mag, phase = _separated_outputs(labels, np.random.default_rng(1))
        clusters = cluster_phases(mag, phase, task.n_objects, exclude=labels < 0, seed=3)
        assert clusters.shape == labels.shape and (clusters[labels < 0] == -1).all()
        assert (ari_fg(labels, clusters) == 1).all() and (ari_bg(labels, clusters) == 1).all()
        res = compute_object_discovery(mag, phase, labels)
        assert res.attrs["ari_fg_mean"] == 1.0 and res.attrs["ari_bg_mean"] == 1.0
        assert res.cluster.dims == ("image", "y", "x")

    def test_colour_outputs_and_per_image_object_counts(self):
        task = SceneParadigm("colored-shapes", n_objects=4)
        labels = task.batch(16, rng=2).covariates["labels"][:, 0]
        labels[8:] = np.where(labels[8:] == 4, 0, labels[8:])  # half the images: 3 objects
        n_obj = np.where(np.arange(16) < 8, 4, 3)
        mag, phase = _separated_outputs(labels, np.random.default_rng(3), channels=3)
        clusters = cluster_phases(mag, phase, n_obj, exclude=labels < 0)
        assert clusters[:8].max() == 4 and clusters[8:].max() == 3
        assert (ari_bg(labels, clusters) == 1).all()

    def test_seeded_canonical_and_rotation_invariant(self):
        labels = SceneParadigm("shapes").batch(10, rng=4).covariates["labels"][:, 0]
        rng = np.random.default_rng(5)
        mag, phase = _separated_outputs(labels, rng, noise=0.4)
        a = cluster_phases(mag, phase, 3, seed=0)
        np.testing.assert_array_equal(a, cluster_phases(mag, phase, 3, seed=0))
        # clusters are numbered by first appearance: pixel (0, 0) is in cluster 0
        assert (a[:, 0, 0] == 0).all()
        for img in a:
            seen = img.ravel()[np.sort(np.unique(img.ravel(), return_index=True)[1])]
            np.testing.assert_array_equal(seen, np.arange(len(seen)))
        rotated = cluster_phases(mag, phase + 1.234, 3, seed=0)
        assert (adjusted_rand_index(a, rotated, axis=(1, 2)) > 0.99).all()

    def test_beats_a_bad_start_on_noisy_blobs(self):
        # two well separated but noisy groups: k-means must split them exactly
        rng = np.random.default_rng(6)
        truth = (np.arange(64) >= 20).astype(int).reshape(1, 8, 8)
        phase = np.where(truth == 1, np.pi, 0.0)[:, None] + rng.normal(0, 0.3, (1, 1, 8, 8))
        out = cluster_phases(np.ones_like(phase), phase, 2, background=False, n_init=1)
        assert adjusted_rand_index(truth, out) == 1.0

    def test_images_in_chunks_are_clustered_alike(self, monkeypatch):
        import analyses._objects as objects_module

        labels = SceneParadigm("shapes").batch(9, rng=11).covariates["labels"][:, 0]
        mag, phase = _separated_outputs(labels, np.random.default_rng(12))
        monkeypatch.setattr(objects_module, "_IMAGES_AT_ONCE", 2)
        out = cluster_phases(mag, phase, 3, exclude=labels < 0)
        assert (ari_bg(labels, out) == 1).all()

    def test_xarray_and_no_channel_axis(self):
        labels = SceneParadigm("shapes").batch(4, rng=7).covariates["labels"][:, 0]
        mag, phase = _separated_outputs(labels, np.random.default_rng(8))
        da = xr.DataArray(mag, dims=("image", "channel", "y", "x"), coords={"image": [1, 2, 3, 4]})
        out = cluster_phases(da, phase, 3, exclude=labels < 0)
        assert isinstance(out, xr.DataArray) and out.dims == ("image", "y", "x")
        assert out.name == "cluster" and out.image.values.tolist() == [1, 2, 3, 4]
        np.testing.assert_array_equal(out.values, cluster_phases(mag, phase, 3, exclude=labels < 0))
        flat = cluster_phases(mag[:, 0], phase[:, 0], 3, exclude=labels < 0, channel_axis=None)
        np.testing.assert_array_equal(flat, out.values)

    def test_magnitude_clip_and_errors(self):
        labels = SceneParadigm("shapes").batch(4, rng=9).covariates["labels"][:, 0]
        mag, phase = _separated_outputs(labels, np.random.default_rng(10))
        out = cluster_phases(mag * 50, phase, 3, exclude=labels < 0, magnitude_clip=1.0)
        assert (ari_bg(labels, out) == 1).all()
        with pytest.raises(ValueError, match="magnitude_clip"):
            cluster_phases(mag, phase, 3, magnitude_clip=0.0)
        with pytest.raises(ValueError, match="n_init"):
            cluster_phases(mag, phase, 3, n_init=0)
        with pytest.raises(ValueError, match="without clusters"):
            cluster_phases(mag, phase, 0, background=False)


# ------------------------------------------------------------------ synchrony
class TestPhaseSynchrony:
    def test_in_phase_objects_score_one_within(self):
        rng = np.random.default_rng(0)
        labels = SceneParadigm("shapes").batch(8, rng=0).covariates["labels"][:, 0]
        angle = rng.uniform(-np.pi, np.pi, (8, 4))
        phase = np.take_along_axis(angle, np.maximum(labels, 0).reshape(8, -1), 1).reshape(
            labels.shape
        )
        phase = np.where(labels < 0, rng.uniform(-np.pi, np.pi, labels.shape), phase)  # ignored
        mag = rng.uniform(0.1, 2.0, labels.shape)
        s = phase_synchrony(phase[:, None], mag[:, None], labels[:, None])
        np.testing.assert_allclose(s.within, 1.0, atol=1e-12)
        np.testing.assert_allclose(s.per_object, 1.0, atol=1e-12)
        np.testing.assert_allclose(
            np.exp(1j * s.object_phase), np.exp(1j * angle[:, 1:]), atol=1e-9
        )
        expect = np.abs(np.exp(1j * angle[:, 1:]).mean(1))
        np.testing.assert_allclose(s.between, expect, atol=1e-12)

    def test_between_is_zero_for_evenly_spread_and_one_for_equal_phases(self):
        labels = np.repeat(np.arange(1, 4), 5)[None]
        spread = 2 * np.pi * labels / 3
        s = phase_synchrony(spread, np.ones(labels.shape), labels)
        assert s.between[0] == pytest.approx(0, abs=1e-12) and s.within[0] == pytest.approx(1)
        same = phase_synchrony(np.full(labels.shape, 0.7), np.ones(labels.shape), labels)
        assert same.between[0] == pytest.approx(1)

    def test_magnitude_weighting_and_random_phases(self):
        labels = np.ones((1, 4000), int)
        rng = np.random.default_rng(1)
        phase = rng.uniform(-np.pi, np.pi, labels.shape)
        assert phase_synchrony(phase, np.ones(labels.shape), labels).within[0] < 0.05
        mag = np.zeros(labels.shape)
        mag[0, :10] = 1.0  # only ten in-phase units carry weight
        phase[0, :10] = 0.3
        assert phase_synchrony(phase, mag, labels).within[0] == pytest.approx(1)
        # two units of weights 3 and 1 in antiphase: |3 - 1| / 4
        s = phase_synchrony(np.array([[0.0, np.pi]]), np.array([[3.0, 1.0]]), np.array([[1, 1]]))
        assert s.within[0] == pytest.approx(0.5)

    def test_absent_objects_background_and_n_objects(self):
        labels = np.array([[0, 0, 1, 1, 3, 3]])
        phase = np.array([[1.0, 1.0, 0.0, 0.0, np.pi, np.pi]])
        s = phase_synchrony(phase, np.ones(labels.shape), labels)
        assert s.per_object.shape == (1, 3) and np.isnan(s.per_object[0, 1])
        assert s.within[0] == 1.0 and s.between[0] == pytest.approx(0, abs=1e-12)
        bg = phase_synchrony(phase, np.ones(labels.shape), labels, include_background=True)
        assert bg.per_object.shape == (1, 4) and bg.object_phase[0, 0] == pytest.approx(1.0)
        one = phase_synchrony(phase, np.ones(labels.shape), labels, n_objects=1)
        assert one.per_object.shape == (1, 1) and np.isnan(one.between[0])

    def test_units_over_time_and_xarray(self):
        rng = np.random.default_rng(2)
        labels = rng.integers(1, 4, 12)  # a unit's object, the same at every step
        phase = labels * 2.0 + np.zeros((5, 7, 12))  # [trial, time, unit]
        ds = phase_synchrony(
            xr.DataArray(phase, dims=("trial", "time", "unit")),
            xr.DataArray(np.ones_like(phase), dims=("trial", "time", "unit")),
            xr.DataArray(labels, dims="unit"),
            dim="unit",
        )
        assert ds.within.dims == ("trial", "time") and ds.per_object.dims[-1] == "object"
        assert ds.object.values.tolist() == [1, 2, 3]
        np.testing.assert_allclose(ds.within.values, 1.0)
        np_res = phase_synchrony(phase, np.ones_like(phase), labels, axis=-1)
        np.testing.assert_allclose(ds.between.values, np_res.between)

    def test_errors(self):
        with pytest.raises(ValueError, match="integers"):
            phase_synchrony(np.zeros((2, 3)), np.ones((2, 3)), np.zeros((2, 3)))
        with pytest.raises(ValueError, match="labels\\[:, None\\]"):
            phase_synchrony(np.zeros((2, 3, 4)), np.ones((2, 3, 4)), np.zeros((2, 5), int))


# ------------------------------------------------------------------ figure
def test_phase_map_hue_is_phase_and_value_is_magnitude():
    rgb = phase_map(np.array([[1.0, 0.5]]), np.array([[0.0, 2 * np.pi / 3]]))
    np.testing.assert_allclose(rgb[0, 0], [1, 0, 0], atol=1e-12)  # phase 0: red
    np.testing.assert_allclose(rgb[0, 1], [0, 0.5, 0], atol=1e-12)  # 120°: green, half value
    pooled = phase_map(np.ones((2, 1, 1)), np.array([[[0.0]], [[np.pi]]]))  # antiphase channels
    np.testing.assert_allclose(pooled, 0, atol=1e-12)


def test_plot_object_scenes(tmp_path):
    torch = pytest.importorskip("torch")
    b = SceneParadigm("colored-shapes").batch(3, rng=0)
    images, labels = b.covariates["images"][:, 0], b.covariates["labels"][:, 0]
    mag, phase = _separated_outputs(labels, np.random.default_rng(0), channels=3)
    clusters = cluster_phases(mag, phase, 3, exclude=labels < 0)
    fig = plot_object_scenes(
        torch.from_numpy(images), images, mag, phase, clusters, labels=labels, n_scenes=2
    )
    assert len(fig.axes) == 10
    assert [ax.get_title() for ax in fig.axes[:5]][-1] == "true labels"
    path = tmp_path / "fig" / "objects.png"
    plot_object_scenes(images[:, 0], images[:, 0], mag[:, 0], phase[:, 0], clusters, path=path)
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match="n_scenes"):
        plot_object_scenes(images, images, mag, phase, clusters, n_scenes=0)
