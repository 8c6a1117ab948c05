"""Scene paradigms: seeded scenes, label maps against an independent rasteriser, motion."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import paradigms
from paradigms._scenes import SceneParadigm, _register, scene_images
from paradigms._shapes import TETROMINO_CELLS, TETROMINO_COLORS, TETROMINO_NAMES

IDS = ["scenes/2shapes", "scenes/3shapes", "scenes/tetrominoes", "scenes/colored-shapes"]


@pytest.fixture(autouse=True, scope="module")
def _scene_ids_registered():
    """Register the scene ids for these tests if ``paradigms`` does not (yet), and undo it."""
    from paradigms._base import _REGISTRY

    missing = [i for i in IDS if i not in paradigms.available()]
    if missing:
        _register()
    yield
    for i in missing:
        _REGISTRY.pop(i, None)


def _registry_tests():
    path = Path(__file__).with_name("test_registry.py")
    spec = importlib.util.spec_from_file_location("_scene_registry_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------ an independent rasteriser
def _pixel_in(kind, u, v, height, width, block=4):
    """Is the pixel centre at (u, v) from the box corner inside the object? Scalar, plain."""
    if kind == "square":
        return 0 <= u < width and 0 <= v < height
    if kind in ("triangle_up", "triangle_down"):
        if not 0 <= v < height:
            return False
        half_width = v if kind == "triangle_up" else height - v  # 45° sides
        return abs(u - width / 2) < half_width
    if kind == "circle":
        r = width / 2
        return (u - r) ** 2 + (v - r) ** 2 < r * r
    ci, cj = int(np.floor(v / block)), int(np.floor(u / block))
    cells = TETROMINO_CELLS[TETROMINO_NAMES.index(kind)]
    return 0 <= ci < 4 and 0 <= cj < 4 and bool(cells[ci, cj])


def _coverage(kind, row, col, height, width, size=32, block=4):
    out = np.zeros((size, size), bool)
    for i in range(size):
        for j in range(size):
            out[i, j] = _pixel_in(kind, j + 0.5 - col, i + 0.5 - row, height, width, block)
    return out


def _scene_coverage(trials, i, positions=None, step=0, block=4):
    k = int(trials.n_objects[i])
    covers = []
    for j in range(1, k + 1):
        row, col = (trials[f"row_{j}"][i], trials[f"col_{j}"][i])
        if positions is not None:
            row, col = positions[i, step, j - 1]
        h, w = trials[f"height_{j}"][i], trials[f"width_{j}"][i]
        covers.append(_coverage(trials[f"kind_{j}"][i], row, col, h, w, block=block))
    return np.stack(covers)


def _labels_from(cover, mode="mark"):
    count = cover.sum(0)
    last = np.zeros(cover.shape[1:], int)
    for j, c in enumerate(cover):
        last[c] = j + 1
    if mode == "mark":
        last[count > 1] = -1
    return last


def _area(kind, height, width, block=4):
    if kind == "square":
        return height * width
    if kind.startswith("triangle"):
        return height * height
    if kind == "circle":  # lattice points of pixel centres strictly inside the disc
        r = width / 2
        return sum(
            (i + 0.5 - r) ** 2 + (j + 0.5 - r) ** 2 < r * r
            for i in range(width)
            for j in range(width)
        )
    return 4 * block * block


# ------------------------------------------------------------ registry and determinism
@pytest.mark.parametrize("pid", IDS)
def test_registry_contract_holds_for_scene_ids(pid):
    mod = _registry_tests()
    mod.test_batch_contract(pid)
    mod.test_same_seed_same_batch_other_seed_other_batch(pid)


@pytest.mark.parametrize("pid", IDS)
def test_same_seed_same_scenes_and_covariates(pid):
    task = paradigms.make(pid, motion=True, n_steps=4)
    a, b = task.batch(16, rng=3), task.batch(16, rng=np.random.default_rng(3))
    for key in a.covariates:
        np.testing.assert_array_equal(a.covariates[key], b.covariates[key])
    pd.testing.assert_frame_equal(a.trials, b.trials)
    c = task.batch(16, rng=4)
    assert not np.array_equal(a.covariates["labels"], c.covariates["labels"])
    sc = task.scenes(16, rng=3)
    np.testing.assert_array_equal(sc.images, a.covariates["images"])
    np.testing.assert_array_equal(sc.labels, a.covariates["labels"])


@pytest.mark.parametrize("pid", IDS)
def test_inputs_targets_images_and_metadata_agree(pid):
    task = paradigms.make(pid)
    b = task.batch(12, rng=0)
    c, h, w = task.image_shape
    assert (h, w) == (32, 32) and c == (1 if "shapes" in pid and "colored" not in pid else 3)
    images, labels = scene_images(b)
    assert images.shape == (12, 1, c, 32, 32) and images.dtype == np.float32
    assert labels.shape == (12, 1, 32, 32) and labels.dtype == np.int64
    np.testing.assert_array_equal(images.reshape(12, 1, -1), b.inputs)
    np.testing.assert_array_equal(b.targets, b.inputs)
    assert b.target_kind == "continuous" and b.dt == task.dt == 100.0
    assert b.inputs.min() >= 0 and b.inputs.max() <= 1
    assert (b.trials.n_objects == task.n_objects).all()
    json.dumps(task.describe())  # kwargs are JSON-serialisable
    # performance of a perfect reconstruction is 0 (minus the MSE)
    np.testing.assert_array_equal(task.performance(b.targets, b), np.zeros(12))


# ------------------------------------------------------------ label maps
@pytest.mark.parametrize("pid", IDS)
def test_label_maps_match_an_independent_rasterisation(pid):
    task = paradigms.make(pid)
    b = task.batch(40, rng=1)
    labels = b.covariates["labels"][:, 0]
    for i in range(40):
        cover = _scene_coverage(b.trials, i)
        np.testing.assert_array_equal(labels[i], _labels_from(cover))
        for j, c in enumerate(cover, start=1):
            kind = b.trials[f"kind_{j}"][i]
            h, w = b.trials[f"height_{j}"][i], b.trials[f"width_{j}"][i]
            assert c.sum() == _area(kind, h, w)  # the drawn shape's whole area, analytically
            assert b.trials[f"pixels_{j}"][i] == (labels[i] == j).sum()


def test_object_areas_are_the_analytic_ones():
    task = paradigms.make("scenes/3shapes", size_range=(5, 15))
    b = task.batch(200, rng=2)
    labels = b.covariates["labels"][:, 0]
    for j in (1, 2, 3):
        kind = b.trials[f"kind_{j}"]
        h, w = b.trials[f"height_{j}"], b.trials[f"width_{j}"]
        own = (labels == j).sum((1, 2))
        shared = b.trials[f"pixels_{j}"]
        np.testing.assert_array_equal(own, shared)
        tri = kind.str.startswith("triangle").to_numpy()
        sq = (kind == "square").to_numpy()
        # with no overlap the visible area is the exact area: s² and h² (base 2h − 1)
        alone = (labels == -1).sum((1, 2)) == 0
        np.testing.assert_array_equal(own[alone & sq], (h * w)[alone & sq])
        np.testing.assert_array_equal(own[alone & tri], (h * h)[alone & tri])
        assert (w[tri] == 2 * h[tri] - 1).all() and (h[sq] == w[sq]).all()
        assert set(kind) <= {"square", "triangle_up", "triangle_down", "circle"}
    assert {"triangle_up", "triangle_down"} <= set(b.trials.kind_2)  # "triangle": both ways
    assert (b.trials.kind_1 == "square").all() and (b.trials.kind_3 == "circle").all()
    sizes = np.concatenate([b.trials.width_1, b.trials.width_3])
    assert sizes.min() == 5 and sizes.max() == 15


def test_overlaps_are_marked_exactly_where_two_shapes_cover_a_pixel():
    task = paradigms.make("scenes/3shapes", max_overlap=0.9, size_range=(10, 16))
    b = task.batch(60, rng=5)
    labels = b.covariates["labels"][:, 0]
    assert (labels == -1).any(1).any(1).mean() > 0.3  # overlaps do happen
    for i in range(60):
        cover = _scene_coverage(b.trials, i)
        np.testing.assert_array_equal(labels[i] == -1, cover.sum(0) >= 2)
        # every object keeps at least (1 - max_overlap) of its pixels
        for j, c in enumerate(cover, start=1):
            assert (labels[i] == j).sum() >= (1 - 0.9) * c.sum()


@pytest.mark.parametrize("pid", IDS)
def test_every_object_is_present_in_every_frame(pid):
    task = paradigms.make(pid, motion=True, n_steps=6)
    b = task.batch(50, rng=9)
    labels = b.covariates["labels"]
    k = task.n_objects
    assert labels.min() >= -1 and labels.max() == k
    present = np.stack([(labels == j).any((2, 3)) for j in range(1, k + 1)])
    assert present.all()


def test_occlude_labels_the_object_on_top():
    task = paradigms.make("scenes/colored-shapes", overlap="occlude", max_overlap=0.8)
    b = task.batch(40, rng=6)
    labels = b.covariates["labels"][:, 0]
    assert labels.min() == 0
    for i in range(40):
        np.testing.assert_array_equal(
            labels[i], _labels_from(_scene_coverage(b.trials, i), "occlude")
        )


def test_static_tetrominoes_never_overlap():
    b = paradigms.make("scenes/tetrominoes").batch(100, rng=0)
    labels = b.covariates["labels"]
    assert labels.min() == 0
    assert ((labels > 0).sum((1, 2, 3)) == 3 * 4 * 16).all()  # three pieces of 4 blocks of 4x4
    assert set(b.trials.kind_1) <= set(TETROMINO_NAMES) and len(TETROMINO_NAMES) == 19


# ------------------------------------------------------------ colours
def test_greyscale_images_are_white_objects_on_black():
    b = paradigms.make("scenes/2shapes").batch(30, rng=0)
    images, labels = scene_images(b)
    np.testing.assert_array_equal(images[:, :, 0], (labels != 0).astype(np.float32))
    assert (b.trials.intensity_1 == 1).all()


@pytest.mark.parametrize("pid", ["scenes/tetrominoes", "scenes/colored-shapes"])
def test_objects_have_their_colour_and_overlaps_the_last_drawn(pid):
    task = paradigms.make(pid, max_overlap=0.6)
    b = task.batch(30, rng=1)
    images, labels = scene_images(b)
    img = images[:, 0].transpose(0, 2, 3, 1)  # [B, H, W, 3]
    for i in range(30):
        cover = _scene_coverage(b.trials, i)
        top = _labels_from(cover, "occlude")
        assert (img[i][top == 0] == 0).all()  # black background
        for j in range(1, task.n_objects + 1):
            rgb = [b.trials[f"{c}_{j}"][i] for c in ("red", "green", "blue")]
            np.testing.assert_allclose(
                img[i][top == j], np.broadcast_to(rgb, img[i][top == j].shape)
            )
    colors = b.trials[[f"{c}_1" for c in ("red", "green", "blue")]].to_numpy()
    if pid == "scenes/tetrominoes":
        assert all((TETROMINO_COLORS == c).all(1).any() for c in colors)
    else:  # full saturation and value: one channel at 1, one at 0
        np.testing.assert_allclose(colors.max(1), 1, atol=1e-6)
        np.testing.assert_allclose(colors.min(1), 0, atol=1e-6)
        assert np.ptp(colors[:, 0]) > 0.5  # hues vary


def test_distinct_colors():
    task = paradigms.make("scenes/tetrominoes", n_objects=6, distinct_colors=True, block_size=2)
    b = task.batch(20, rng=0)
    cols = np.stack(
        [b.trials[[f"{c}_{j}" for c in ("red", "green", "blue")]].to_numpy() for j in range(1, 7)],
        1,
    )
    for scene in cols:
        assert len({tuple(c) for c in scene}) == 6


# ------------------------------------------------------------ motion
def _bounce_loop(p, v, room, n_steps):
    """Step-by-step elastic bounce, the obvious way."""
    out = []
    for _ in range(n_steps):
        out.append(p)
        p = p + v
        if p > room:
            p, v = 2 * room - p, -v
        elif p < 0:
            p, v = -p, -v
    return np.array(out)


def test_motion_moves_objects_by_their_velocity_and_bounces():
    task = paradigms.make("scenes/2shapes", motion=True, n_steps=30, speed_range=(0.5, 2.0))
    b = task.batch(20, rng=4)
    pos, vel = b.covariates["positions"], b.covariates["velocities"]
    assert pos.shape == vel.shape == (20, 30, 2, 2)
    bounced = 0
    for i in range(20):
        for j in range(2):
            room = 32 - np.array([b.trials[f"height_{j + 1}"][i], b.trials[f"width_{j + 1}"][i]])
            v0 = vel[i, 0, j]
            np.testing.assert_allclose(
                v0, [b.trials[f"vrow_{j + 1}"][i], b.trials[f"vcol_{j + 1}"][i]]
            )
            assert 0.5 <= np.hypot(*v0) <= 2.0
            for a in range(2):
                expect = _bounce_loop(pos[i, 0, j, a], v0[a], room[a], 30)
                np.testing.assert_allclose(pos[i, :, j, a], expect, atol=1e-9)
                bounced += (np.diff(np.sign(vel[i, :, j, a])) != 0).sum()
            free = (np.abs(vel[i, 1:, j] - vel[i, :-1, j]) == 0).all(1)  # no bounce this step
            np.testing.assert_allclose(
                (pos[i, 1:, j] - pos[i, :-1, j])[free], vel[i, :-1, j][free], atol=1e-9
            )
    assert bounced > 5  # the walls were hit, so the bounce is tested
    assert pos.min() >= 0


def test_moving_label_maps_follow_the_positions():
    task = paradigms.make("scenes/3shapes", motion=True, n_steps=5, speed_range=(1.0, 2.5))
    b = task.batch(8, rng=2)
    labels, pos = b.covariates["labels"], b.covariates["positions"]
    for i in range(8):
        for t in range(5):
            cover = _scene_coverage(b.trials, i, positions=pos, step=t)
            np.testing.assert_array_equal(labels[i, t], _labels_from(cover))
            side = b.trials.width_1[i]  # the square: s² pixels wherever it is
            assert cover[0].sum() == side * side
            rows, cols = np.nonzero(cover[0])
            centre = pos[i, t, 0] + side / 2
            assert abs(rows.mean() + 0.5 - centre[0]) <= 0.5
            assert abs(cols.mean() + 0.5 - centre[1]) <= 0.5
    assert not np.array_equal(labels[:, 0], labels[:, -1])


def test_static_sequences_repeat_the_frame():
    task = paradigms.make("scenes/colored-shapes", n_steps=3)
    b = task.batch(5, rng=0)
    assert b.inputs.shape == (5, 3, 3 * 32 * 32)
    for t in (1, 2):
        np.testing.assert_array_equal(b.inputs[:, t], b.inputs[:, 0])
    assert (b.covariates["velocities"] == 0).all()


def test_scenes_pass_through_simulate_as_covariates():
    import torch

    import neurosim

    task = paradigms.make("scenes/2shapes", image_size=8, size_range=(3, 5), n_steps=2)
    torch.manual_seed(0)
    net = neurosim.models.RateRNN(task.n_inputs, 4, task.n_outputs, dt=task.dt, tau=200.0)
    ds = neurosim.simulate(net, task, n_trials=3, seed=0)
    assert ds["labels"].dims[:2] == ("trial", "time") and ds["labels"].shape == (3, 2, 8, 8)
    assert ds["images"].shape == (3, 2, 1, 8, 8)


# ------------------------------------------------------------ helpers and errors
def test_scene_images_falls_back_to_the_inputs_and_needs_labels():
    import dataclasses

    b = paradigms.make("scenes/tetrominoes").batch(3, rng=0)
    no_images = dataclasses.replace(b, covariates={"labels": b.covariates["labels"]})
    images, _ = scene_images(no_images)
    np.testing.assert_array_equal(images, b.covariates["images"])
    with pytest.raises(ValueError, match="no 'labels'"):
        scene_images(dataclasses.replace(b, covariates={}))


@pytest.mark.parametrize(
    ("pid", "kwargs", "match"),
    [
        ("scenes/2shapes", {"shapes": ("square", "circle", "circle")}, "draws 2 shapes"),
        ("scenes/2shapes", {"style": "tetrominoes"}, "fixes style"),
        ("scenes/3shapes", {"shapes": ("square", "hexagon", "circle")}, "shapes entry"),
        ("scenes/3shapes", {"shapes": "square"}, "non-empty sequence"),
        ("scenes/3shapes", {"n_objects": 2}, "one object per entry"),
        ("scenes/3shapes", {"size_range": (9, 5)}, "size_range"),
        ("scenes/3shapes", {"size_range": (4, 40)}, "size_range"),
        ("scenes/3shapes", {"size_range": (4.5, 9)}, "size_range"),
        ("scenes/3shapes", {"motion": 1}, "motion"),
        ("scenes/3shapes", {"n_steps": 0}, "n_steps"),
        ("scenes/3shapes", {"speed_range": (-1, 1)}, "speed_range"),
        ("scenes/3shapes", {"overlap": "ignore"}, "overlap"),
        ("scenes/3shapes", {"max_overlap": 1.0}, "max_overlap"),
        ("scenes/3shapes", {"image_size": 0}, "image_size"),
        ("scenes/tetrominoes", {"block_size": 9}, "block_size"),
        ("scenes/tetrominoes", {"n_objects": 7, "distinct_colors": True}, "distinct_colors"),
        ("scenes/colored-shapes", {"n_objects": 0}, "n_objects"),
    ],
)
def test_bad_arguments_name_the_field(pid, kwargs, match):
    with pytest.raises(ValueError, match=match):
        paradigms.make(pid, **kwargs)


def test_impossible_placement_says_what_to_change():
    task = SceneParadigm("tetrominoes", n_objects=6, block_size=8)
    with pytest.raises(RuntimeError, match="raise max_overlap"):
        task.batch(2, rng=0)
    with pytest.raises(ValueError, match="n_trials"):
        task.batch(0, rng=0)
