"""Navigation paradigm: the foraging walk, its invariants, place/HD codes and decoders."""

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

import paradigms
from paradigms._navigation import (
    RAYLEIGH_SCALE,
    TURN_SD,
    NavigationParadigm,
    _register,
    generate_trajectories,
)
from paradigms._place_cells import (
    HeadDirectionCells,
    PlaceCells,
    decode_heading,
    decode_position,
    position_error_cm,
    uniform_in_arena,
)

DT = 0.02
ARENAS = ["square", "circle"]


def _wall_distance(pos, arena, half):
    if arena == "square":
        return half - np.abs(pos).max(-1)
    return half - np.hypot(pos[..., 0], pos[..., 1])


def _wrap(a):
    return np.mod(a + np.pi, 2 * np.pi) - np.pi


# ---------------------------------------------------------------------------- the walk


@pytest.mark.parametrize("arena", ARENAS)
def test_positions_never_leave_the_arena_over_a_million_steps(arena):
    tr = generate_trajectories(1000, 1000, rng=11, arena=arena)
    d = _wall_distance(tr.position, arena, 1.1)
    assert d.min() >= 0  # exact, no tolerance
    assert (d < 1e-3).sum() > 100  # the walls were reached, so the bound is tested


@pytest.mark.parametrize("arena", ARENAS)
def test_a_tiny_arena_still_holds_fast_agents(arena):
    # steps of several cm in a 10 cm arena: most steps have to be shortened by the wall
    tr = generate_trajectories(200, 500, rng=1, arena=arena, size=0.1, speed_scale=3.0)
    assert _wall_distance(tr.position, arena, 0.05).min() >= 0
    assert (tr.speed < 0.25 * 3.0).mean() > 0.3


@pytest.mark.parametrize("arena", ARENAS)
def test_speed_is_rayleigh_away_from_walls(arena):
    tr = generate_trajectories(1000, 600, rng=2, arena=arena)
    far = _wall_distance(tr.position[:, :-1], arena, 1.1) > 0.1
    v = tr.speed[far]
    assert v.size > 300_000
    b = RAYLEIGH_SCALE
    assert v.mean() == pytest.approx(b * math.sqrt(math.pi / 2), rel=0.01)  # ~20 SE
    assert (v**2).mean() == pytest.approx(2 * b * b, rel=0.015)


@pytest.mark.parametrize("arena", ARENAS)
def test_turning_noise_has_the_sd_of_the_rotation_velocity_times_dt(arena):
    tr = generate_trajectories(1000, 600, rng=3, arena=arena)
    far = _wall_distance(tr.position[:, :-1], arena, 1.1) > 0.03  # no wall turn possible
    dh = np.diff(tr.heading, axis=1)[far]
    assert dh.size > 300_000
    assert dh.std() == pytest.approx(TURN_SD * DT, rel=0.01)
    assert abs(dh.mean()) < 0.002


def _agents_avoiding_walls(tr, arena, half=1.1, margin=0.03):
    """Steps that start within the margin with the arriving heading into the nearest wall."""
    pos, h = tr.position[:, :-1], tr.heading[:, :-1]
    if arena == "square":
        dists = np.stack(
            [half - pos[..., 0], half - pos[..., 1], half + pos[..., 0], half + pos[..., 1]]
        )
        normal = dists.argmin(0) * np.pi / 2
    else:
        normal = np.arctan2(pos[..., 1], pos[..., 0])
    a = _wrap(h - normal)
    avoid = (_wall_distance(pos, arena, half) < margin) & (np.abs(a) < np.pi / 2)
    a_after = _wrap(tr.heading[:, 1:] - normal)
    return avoid, a_after


@pytest.mark.parametrize("arena", ARENAS)
def test_near_a_wall_the_agent_slows_down_and_turns_away(arena):
    tr = generate_trajectories(1000, 400, rng=4, arena=arena)
    avoid, a_after = _agents_avoiding_walls(tr, arena)
    far = _wall_distance(tr.position[:, :-1], arena, 1.1) > 0.1
    assert avoid.sum() > 2000
    ratio = tr.speed[avoid].mean() / tr.speed[far].mean()
    assert 0.2 < ratio <= 0.25 + 1e-9  # x0.25, a little less where the wall cuts steps short
    # after the turn the heading is parallel to the wall, up to the step's rotation noise
    dev = np.abs(np.abs(a_after[avoid]) - np.pi / 2)
    assert np.quantile(dev, 0.99) < 3 * TURN_SD * DT
    # without the slowdown the same steps are as fast as anywhere (less the wall cuts)
    tr1 = generate_trajectories(1000, 400, rng=4, arena=arena, wall_slowdown=1.0)
    avoid1, _ = _agents_avoiding_walls(tr1, arena)
    assert tr1.speed[avoid1].mean() / tr1.speed.mean() > 0.6


def _reference_walk(start, h0, turns, speeds, arena, half, margin, slow, dt):
    """The walk for ONE agent, in plain Python floats (a literal reading of the model)."""
    x, y, h = float(start[0]), float(start[1]), float(h0)
    xs, ys, hs = [x], [y], [h]
    for turn, v in zip(turns, speeds, strict=True):
        if arena == "square":  # the nearest wall and its outward normal
            x_wall = abs(x) >= abs(y)
            d_wall = half - max(abs(x), abs(y))
            normal = math.atan2(0.0 if x_wall else y, x if x_wall else 0.0)
        else:
            d_wall, normal = half - math.hypot(x, y), math.atan2(y, x)
        a = (h - normal + math.pi) % (2 * math.pi) - math.pi
        h = h + turn
        step = v * dt
        if d_wall < margin and abs(a) < math.pi / 2:  # heading into it: turn parallel, slow
            h += math.copysign(math.pi / 2, a) - a
            step *= slow
        c, s = math.cos(h), math.sin(h)
        xn, yn = x + step * c, y + step * s
        outside = max(abs(xn), abs(yn)) > half if arena == "square" else math.hypot(xn, yn) > half
        if outside:  # a hard wall: the step ends (just short of) where it meets the wall
            if arena == "square":
                reach = min(
                    (half - p * math.copysign(1.0, u)) / abs(u) if u != 0 else math.inf
                    for p, u in ((x, c), (y, s))
                )
            else:
                pu = x * c + y * s
                reach = math.sqrt(max(pu * pu + half * half - (x * x + y * y), 0.0)) - pu
            step = max(min(step, reach * (1 - 1e-9)), 0.0)
            xn, yn = x + step * c, y + step * s
        x, y = xn, yn
        xs.append(x), ys.append(y), hs.append(h)
    return np.array([xs, ys]).T, np.array(hs)


@pytest.mark.parametrize("arena", ARENAS)
def test_vectorised_walk_matches_a_per_agent_scalar_loop(arena):
    n, t, size = 40, 300, 0.5  # a small arena: many wall turns and cut steps
    tr = generate_trajectories(n, t, rng=5, arena=arena, size=size)
    g = np.random.default_rng(5)  # the documented draw order
    start = uniform_in_arena(g, n, arena, size)
    h0 = g.uniform(-np.pi, np.pi, n)
    turns = (g.normal(0.0, TURN_SD, (t, n)) * DT).T
    speeds = g.rayleigh(RAYLEIGH_SCALE, (t, n)).T
    for i in range(n):
        pos, h = _reference_walk(
            start[i], h0[i], turns[i], speeds[i], arena, size / 2, 0.03, 0.25, DT
        )
        np.testing.assert_allclose(tr.position[i], pos, rtol=0, atol=1e-12)
        np.testing.assert_allclose(tr.heading[i], h, rtol=0, atol=1e-12)


def test_same_seed_gives_a_bit_identical_walk():
    a, b = (
        generate_trajectories(50, 100, rng=9),
        generate_trajectories(50, 100, rng=np.random.default_rng(9)),
    )
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.position, generate_trajectories(50, 100, rng=10).position)


# ---------------------------------------------------------------------------- the batch


@pytest.mark.parametrize("arena", ARENAS)
def test_integrating_velocity_inputs_reproduces_the_positions(arena):
    task = NavigationParadigm(arena, n_steps=200, angular_velocity_input=True)
    b = task.batch(64, rng=0)
    start = b.trials[["start_x", "start_y"]].to_numpy()
    path = start[:, None] + np.cumsum(b.inputs[..., :2].astype(np.float64) * task.time_step, axis=1)
    np.testing.assert_allclose(path, b.covariates["position"], rtol=0, atol=1e-5)
    heading = b.trials["start_heading"].to_numpy()[:, None] + np.cumsum(
        b.inputs[..., 2] * task.time_step, 1
    )
    np.testing.assert_allclose(_wrap(heading - b.covariates["head_direction"] + 1), 1, atol=1e-4)


def test_polar_inputs_are_speed_and_heading_of_each_step():
    task = NavigationParadigm("square", n_steps=100, velocity_input="polar")
    b = task.batch(32, rng=1)
    speed, c, s = np.moveaxis(b.inputs, -1, 0)
    np.testing.assert_allclose(c**2 + s**2, 1, atol=1e-6)
    np.testing.assert_allclose(speed, b.covariates["speed"], rtol=1e-6)
    h = b.covariates["head_direction"]
    np.testing.assert_allclose(c, np.cos(h), atol=1e-6)
    np.testing.assert_allclose(s, np.sin(h), atol=1e-6)
    start = b.trials[["start_x", "start_y"]].to_numpy()
    v = np.stack([speed * c, speed * s], -1).astype(np.float64)
    np.testing.assert_allclose(
        start[:, None] + np.cumsum(v * 0.02, 1), b.covariates["position"], atol=1e-5
    )


def test_batch_layout_targets_covariates_and_trials():
    task = NavigationParadigm("circle", n_steps=15, n_place_cells=100, n_hd_cells=8)
    b = task.batch(5, rng=2)
    assert b.inputs.shape == (5, 15, 2) and b.targets.shape == (5, 15, 108)
    assert b.inputs.dtype == b.targets.dtype == np.float32 and b.target_kind == "continuous"
    assert b.dt == task.dt == 20.0 and (b.mask == 1).all() and b.valid.all()
    assert task.output_groups == (100, 8) and task.loss == "soft_cross_entropy"
    pos, hd = b.covariates["position"], b.covariates["head_direction"]
    assert (
        pos.shape == (5, 15, 2) and hd.shape == (5, 15) and b.covariates["speed"].shape == (5, 15)
    )
    np.testing.assert_array_equal(b.targets[..., :100], task.encode(pos))
    np.testing.assert_array_equal(b.targets[..., 100:], task.encode_heading(hd))
    start = b.trials[["start_x", "start_y"]].to_numpy()
    init = b.covariates["init_code"]
    assert init.shape == (5, 108)
    np.testing.assert_array_equal(
        init, task.targets_for(start, b.trials["start_heading"].to_numpy())
    )
    assert list(b.trials.columns) == ["start_x", "start_y", "start_heading", "arena"]
    assert (b.trials["arena"] == "circle").all()
    assert (np.hypot(*start.T) <= 1.1).all() and (np.abs(hd) <= np.pi).all()


def test_place_only_targets_and_duration_in_seconds():
    task = NavigationParadigm("square", duration=1.0, n_hd_cells=0, n_place_cells=64)
    b = task.batch(3, rng=0)
    assert task.n_steps == 50 and b.targets.shape == (3, 50, 64) and task.output_groups == (64,)
    np.testing.assert_allclose(b.targets.sum(-1), 1, atol=1e-5)


def test_same_seed_same_batch_covariates_included():
    task = NavigationParadigm("square", n_steps=30)
    a, c = task.batch(16, rng=4), task.batch(16, rng=4)
    for x, y in [(a.inputs, c.inputs), (a.targets, c.targets)] + [
        (a.covariates[k], c.covariates[k]) for k in a.covariates
    ]:
        np.testing.assert_array_equal(x, y)
    pd.testing.assert_frame_equal(a.trials, c.trials)


def test_registered_ids_rebuild_from_describe(monkeypatch):
    from paradigms import _base

    paradigms.available()  # run the lazy loaders first, into the real registry
    monkeypatch.setattr(_base, "_REGISTRY", dict(_base._REGISTRY))  # leave it as found
    _register()  # paradigms/__init__ calls this; harmless twice
    assert {"navigation/square", "navigation/circle"} <= set(paradigms.available("navigation"))
    task = paradigms.make("navigation/circle", n_steps=12, velocity_input="polar")
    desc = json.loads(json.dumps(task.describe()))
    assert desc["id"] == "navigation/circle" and desc["dt"] == 20.0 and desc["n_inputs"] == 3
    again = paradigms.make(desc["id"], **desc["kwargs"])
    np.testing.assert_array_equal(task.batch(4, rng=1).targets, again.batch(4, rng=1).targets)
    with pytest.raises(ValueError, match="navigation/square fixes arena"):
        paradigms.make("navigation/square", arena="circle")


# ---------------------------------------------------------------------------- codes and decoders


@pytest.mark.parametrize("tuning", ["gaussian", "dog"])
def test_place_code_is_a_distribution_with_the_stated_tuning(tuning):
    cells = PlaceCells(256, 0.12, tuning=tuning, seed=3)
    p = np.random.default_rng(0).uniform(-1.1, 1.1, (500, 2))
    code = cells.encode(p)
    assert code.dtype == np.float32 and (code >= 0).all()
    np.testing.assert_allclose(code.sum(-1), 1, atol=1e-5)
    d2 = ((p[:, None] - cells.centres) ** 2).sum(-1)  # independent float64 formula

    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    want = softmax(-d2 / (2 * 0.12**2))
    if tuning == "dog":
        want = want - softmax(-d2 / (2 * 2.0 * 0.12**2))
        want = want - want.min(-1, keepdims=True)
        want /= want.sum(-1, keepdims=True)
        assert (code.min(-1) == 0).all()
    np.testing.assert_allclose(code, want, atol=2e-6)
    nearest = d2.argmin(-1)
    np.testing.assert_array_equal(code.argmax(-1), nearest)  # holds for the DoG too


def test_place_cell_centres_are_uniform_fixed_by_seed_and_inside_the_arena():
    a, b = PlaceCells(2000, seed=1), PlaceCells(2000, seed=1)
    np.testing.assert_array_equal(a.centres, b.centres)
    assert not np.array_equal(a.centres, PlaceCells(2000, seed=2).centres)
    assert np.abs(a.centres).max() <= 1.1 and abs(a.centres.mean()) < 0.03
    circ = PlaceCells(4000, arena="circle", size=2.0, seed=0).centres
    r = np.hypot(*circ.T)
    assert r.max() <= 1.0 and np.mean(r < 0.5) == pytest.approx(0.25, abs=0.03)  # area fraction


def test_top_k_decoding_is_the_mean_of_the_k_nearest_centres():
    cells = PlaceCells(512, tuning="gaussian", seed=0)
    p = np.random.default_rng(1).uniform(-0.9, 0.9, (4000, 2))  # 20 cm from the walls
    dec = decode_position(cells.encode(p), cells.centres, k=3)
    d2 = ((p[:, None] - cells.centres) ** 2).sum(-1)
    np.testing.assert_allclose(dec, cells.centres[np.argsort(d2, 1)[:, :3]].mean(1), atol=1e-12)
    err = position_error_cm(dec, p)
    # the floor of this decoder is set by the centre spacing (2.2 m / sqrt(512) = 9.7 cm):
    # about 4 cm on average with 512 cells, and it shrinks as 1 / sqrt(N)
    assert 3.0 < err.mean() < 5.0
    dense = PlaceCells(4096, tuning="gaussian", seed=0)
    err_dense = position_error_cm(dense.decode(dense.encode(p)), p)
    assert err_dense.mean() < 2.0
    # logits decode the same as the code
    np.testing.assert_array_equal(cells.decode(np.log(cells.encode(p[:50]) + 1e-30)), dec[:50])


def test_head_direction_code_peaks_at_the_true_heading():
    hd = HeadDirectionCells(12, 20.0)
    theta = np.random.default_rng(2).uniform(-np.pi, np.pi, 5000)
    code = hd.encode(theta)
    np.testing.assert_allclose(code.sum(-1), 1, atol=1e-5)
    nearest = np.abs(_wrap(theta[:, None] - hd.preferred)).argmin(-1)
    np.testing.assert_array_equal(code.argmax(-1), nearest)
    want = np.exp(20 * np.cos(theta[:, None] - hd.preferred))
    np.testing.assert_allclose(code, want / want.sum(-1, keepdims=True), atol=1e-6)
    err = np.abs(_wrap(decode_heading(code, hd.preferred) - theta))
    assert err.max() < np.radians(2.5)


def test_performance_is_minus_the_decoding_error_in_cm():
    task = NavigationParadigm("square", n_steps=20)
    b = task.batch(30, rng=5)
    perfect = task.performance(b.targets, b)
    assert perfect.shape == (30,)
    want = -position_error_cm(
        decode_position(b.targets[..., :512], task.place_cell_centres), b.covariates["position"]
    )
    np.testing.assert_allclose(perfect, want.mean(1))
    assert -7 < perfect.mean() < -2  # the decoder's own floor with 512 cells
    shuffled = task.performance(b.targets[::-1], b)
    assert shuffled.mean() < -50  # positions of other trials: ~ the mean distance in the box
    no_cov = dataclasses.replace(b, covariates={})
    np.testing.assert_allclose(task.performance(b.targets, no_cov), 0, atol=1e-9)


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"arena": "hexagon"},
            r"arena = 'hexagon' is not allowed; choose one of \['square', 'circle'\]",
        ),
        (
            {"velocity_input": "egocentric"},
            r"velocity_input = 'egocentric'.*\['cartesian', 'polar'\]",
        ),
        ({"place_cell_tuning": "mexican"}, r"place_cell_tuning = 'mexican'.*\['gaussian', 'dog'\]"),
        ({"n_place_cells": 0}, r"n_place_cells = 0 is not allowed; it must be an integer > 0"),
        ({"n_hd_cells": 2.5}, r"n_hd_cells = 2.5 .*integer >= 0"),
        ({"size": -1.0}, r"size = -1.0 .*> 0"),
        ({"place_cell_width": float("nan")}, r"place_cell_width = nan"),
        ({"wall_slowdown": 2.0}, r"wall_slowdown = 2.0 .*\[0, 1\]"),
        ({"wall_margin": 1.5}, r"wall_margin = 1.5 .*less than half the arena size"),
        ({"duration": 0.03}, r"duration = 0.03 .*whole number"),
        ({"duration": 1.0, "n_steps": 10}, r"n_steps = 10 or duration = 1.0"),
        ({"angular_velocity_input": "yes"}, r"angular_velocity_input = 'yes'"),
        ({"surround_scale": 0.5}, r"surround_scale = 0.5"),
    ],
)
def test_bad_parameters_name_the_field_and_the_accepted_values(kwargs, match):
    kw = dict(kwargs)
    arena = kw.pop("arena", "square")
    with pytest.raises(ValueError, match=match):
        NavigationParadigm(arena, **kw)


def test_decoder_arguments_are_checked():
    centres = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"k = 5 is not allowed; it must be an int in \[1, 4\]"):
        decode_position(np.zeros(4), centres, k=5)
    with pytest.raises(ValueError, match=r"place_code must be \[..., 4\]"):
        decode_position(np.zeros(3), centres)
    with pytest.raises(ValueError, match=r"position must be \[..., 2\]"):
        PlaceCells(8).encode(np.zeros(3))


def test_simulate_carries_the_covariates_and_scores_saved_trajectories():
    import torch

    import neurosim

    task = NavigationParadigm("circle", n_steps=10, n_place_cells=32, n_hd_cells=4)
    torch.manual_seed(0)
    net = neurosim.models.RateRNN(task.n_inputs, 16, task.n_outputs, dt=task.dt, tau=task.dt)
    b = task.batch(6, rng=3)
    ds = neurosim.simulate(net, task, batch=b, seed=3, quiet=True)
    assert ds["position"].dims == ("trial", "time", "space")
    assert ds["init_code"].dims == ("trial", "init_code_dim1")
    np.testing.assert_array_equal(ds["position"].values, b.covariates["position"])
    rebuilt = neurosim.batch_from_trajectories(ds)
    outputs = ds["output"].values
    np.testing.assert_allclose(task.performance(outputs, rebuilt), task.performance(outputs, b))


@pytest.mark.parametrize("arena", ARENAS)
def test_init_input_appends_start_code_at_step_zero_only(arena):
    task = NavigationParadigm(arena, n_steps=6, n_place_cells=32, init_input=True)
    plain = NavigationParadigm(arena, n_steps=6, n_place_cells=32)
    b, p = task.batch(5, rng=3), plain.batch(5, rng=3)
    assert task.n_inputs == plain.n_inputs + task.n_outputs == b.inputs.shape[-1]
    assert task.input_names[: plain.n_inputs] == plain.input_names
    np.testing.assert_array_equal(b.inputs[..., : plain.n_inputs], p.inputs)
    extra = b.inputs[..., plain.n_inputs :]
    np.testing.assert_allclose(extra[:, 0], b.covariates["init_code"], rtol=1e-6)
    assert not extra[:, 1:].any()
    np.testing.assert_array_equal(b.targets, p.targets)
    assert task.kwargs["init_input"] is True
    again = paradigms.make(f"navigation/{arena}", **task.kwargs)
    assert again.n_inputs == task.n_inputs


def test_init_input_must_be_bool():
    with pytest.raises(ValueError, match="init_input"):
        NavigationParadigm("square", init_input="yes")
    with pytest.raises(ValueError, match="init_input_scale"):
        NavigationParadigm("square", init_input=True, init_input_scale=0)


def test_init_input_scale_multiplies_the_start_code():
    task = NavigationParadigm(
        "square", n_steps=4, n_place_cells=32, init_input=True, init_input_scale=50.0
    )
    b = task.batch(3, rng=1)
    extra = b.inputs[..., 2:]
    np.testing.assert_allclose(extra[:, 0], 50 * b.covariates["init_code"], rtol=1e-5)
    assert not extra[:, 1:].any() and task.kwargs["init_input_scale"] == 50.0
