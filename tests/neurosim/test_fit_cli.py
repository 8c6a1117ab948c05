"""`neurosim teacher-recording` and `neurosim fit` as a new user runs them."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

pytest.importorskip("pynwb")
from pynwb import NWBHDF5IO  # noqa: E402
from pynwb.testing.mock.file import mock_NWBFile  # noqa: E402

import paradigms  # noqa: E402
from neurosim import load_checkpoint, load_recording  # noqa: E402
from neurosim._checkpoint import write_checkpoint  # noqa: E402
from neurosim.cli import main  # noqa: E402
from neurosim.models import RateRNN  # noqa: E402

TASK = "neurogym/PerceptualDecisionMaking-v0"
FIGURES = ("unit_fits.png", "fit_summary.png", "latents.png", "psth.png")


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    task = paradigms.make(TASK)
    torch.manual_seed(0)
    net = RateRNN(task.n_inputs, 12, task.n_outputs, activation="tanh", tau=200.0, dt=task.dt)
    d = tmp_path_factory.mktemp("teacher")
    meta = {"model": net.config(), "paradigm": {"id": TASK, "kwargs": {}}}
    write_checkpoint(d, model=net, optimizer=None, step=0, history=[], meta=meta)
    return d


def _run(args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


def test_teacher_nwb_then_latent_fit(teacher_dir, tmp_path):
    nwb = tmp_path / "new_folder" / "teacher.nwb"
    r = _run(["teacher-recording", teacher_dir, "--out", nwb, "--trials", 60, "--seed", 3])
    assert r.exit_code == 0, r.output
    rec = load_recording(nwb, dt=100.0)
    assert rec.sizes["unit"] == 12 and rec.sizes["trial"] == 60
    cfg = tmp_path / "latent.toml"
    cfg.write_text('model = "latent"\n[load]\ndt = 100.0\n[fit]\nn_latent = 4\nmax_epochs = 3\n')
    out = tmp_path / "fit"
    r = _run(["fit", nwb, "--config", cfg, "--out", out, "--quiet", "--condition", "coh"])
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fit"] == "latent" and np.isfinite(summary["metrics"]["co_bps"])
    assert summary["recording"]["n_units"] == 12
    assert all((out / "figures" / f).stat().st_size > 0 for f in FIGURES)
    model, meta = load_checkpoint(out / "model")
    assert type(model).__name__ == "LatentRNN" and meta["fit"] == "latent"


def test_constrained_fit_of_a_netcdf_teacher_reloads_to_the_same_predictions(teacher_dir, tmp_path):
    nc = tmp_path / "teacher.nc"
    r = _run(["teacher-recording", teacher_dir, "--out", nc, "--kind", "rates", "--trials", 40])
    assert r.exit_code == 0, r.output
    cfg = tmp_path / "c.toml"
    cfg.write_text("[fit]\nn_epochs = 2\ntau = 200.0\n")
    out = tmp_path / "fit"
    r = _run(["fit", nc, "--config", cfg, "--out", out, "--quiet"])
    assert r.exit_code == 0, r.output
    assert "pvar_val" in r.output
    summary = json.loads((out / "summary.json").read_text())
    model, _ = load_checkpoint(out / "model")
    from neurosim.fit import fit

    again = fit(load_recording(nc), "constrained", n_epochs=2, tau=200.0, quiet=True)
    for name, p in again.model.state_dict().items():  # same seed, same fit, same weights
        torch.testing.assert_close(model.state_dict()[name], p)
    assert summary["metrics"]["pvar_val"] == pytest.approx(again.metrics["pvar_val"])


def test_fit_of_a_mock_nwb_session(tmp_path):
    rng = np.random.default_rng(0)
    nwb = mock_NWBFile()
    nwb.add_trial_column("side", "stimulus side")
    for i in range(30):
        nwb.add_trial(start_time=i * 1.0, stop_time=i * 1.0 + 0.6, side=int(i % 2))
    for u in range(6):
        spikes = []
        for i in range(30):
            rate = 20 + 30 * ((i % 2) == (u % 2))
            n = rng.poisson(rate * 0.6)
            spikes.extend(sorted(i * 1.0 + rng.uniform(0, 0.6, n)))
        nwb.add_unit(spike_times=sorted(spikes))
    path = tmp_path / "mock.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[fit]\nn_epochs = 2\ninputs = 'none'\nsmooth_ms = 50.0\n")
    out = tmp_path / "fit"
    r = _run(
        ["fit", path, "--dt", 50, "--window", 0, 600, "--config", cfg, "--out", out, "--quiet"]
    )
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recording"] == {
        **summary["recording"],
        "n_units": 6,
        "n_trials": 30,
        "n_time": 12,
    }
    assert summary["condition"] == "side"


def test_errors_name_the_field(teacher_dir, tmp_path):
    nc = tmp_path / "t.nc"
    _run(["teacher-recording", teacher_dir, "--out", nc, "--kind", "rates", "--trials", 10])
    bad = tmp_path / "bad.toml"
    bad.write_text("[fit]\nn_epoch = 2\n")
    r = _run(["fit", nc, "--config", bad, "--out", tmp_path / "o"])
    assert r.exit_code != 0 and "n_epoch" in r.output and "n_epochs" in r.output
    r = _run(["fit", nc, "--condition", "nope", "--out", tmp_path / "o"])
    assert r.exit_code != 0 and "nope" in r.output and "coh" in r.output
    r = _run(["teacher-recording", teacher_dir, "--out", tmp_path / "t.nwb", "--kind", "rates"])
    assert r.exit_code != 0 and "--kind counts" in r.output
