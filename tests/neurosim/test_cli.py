"""The neurosim command line: help, paradigms, train → simulate, config errors."""

import json

import pytest
from click.testing import CliRunner

import neurosim
from neurosim.cli import main


@pytest.fixture
def run():
    runner = CliRunner()

    def _run(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return _run


@pytest.mark.parametrize(
    "cmd",
    [
        [],
        ["paradigms"],
        ["paradigms", "list"],
        ["train"],
        ["simulate"],
        ["perturb"],
        ["sweep"],
        ["grid-analysis"],
        ["demo"],
    ],
)
def test_help_everywhere(run, cmd):
    res = run(*cmd, "--help")
    assert res.exit_code == 0 and "Usage:" in res.output


def test_paradigms_list_and_describe(run):
    ids = run("paradigms", "list").output.split()
    import paradigms

    assert ids == paradigms.available()
    info = json.loads(run("paradigms", "describe", "neurogym/PerceptualDecisionMaking-v0").output)
    assert (
        info["n_inputs"] == 3 and "decision" in info["periods"] and "coh" in info["trial_variables"]
    )
    res = run("paradigms", "describe", "neurogym/PerceptualDecision")
    assert res.exit_code != 0 and "Closest ids" in res.output
    info = json.loads(run("paradigms", "describe", "bandit/daw2006").output)  # closed loop
    assert info["closed_loop"] is True and info["n_arms"] == 4


def test_train_then_simulate(run, tmp_path):
    out = tmp_path / "run"
    res = run("train", "--hidden", "16", "--steps", "6", "--quiet", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert (out / "history.csv").is_file() and (
        out / "checkpoint" / "last" / "model.safetensors"
    ).is_file()
    traj = tmp_path / "t.nc"
    res = run(
        "simulate", "--checkpoint", str(out / "checkpoint"), "--trials", "20", "--out", str(traj)
    )
    assert res.exit_code == 0, res.output
    ds = neurosim.load(traj)
    assert ds.sizes["trial"] == 20 and ds.sizes["unit"] == 16


def test_config_errors_name_field_and_allowed_values(run, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[train]\nloss = "hinge"\n')
    res = run("train", "--config", str(cfg), "--out", str(tmp_path / "o"))
    assert res.exit_code != 0
    assert (
        "train.loss = 'hinge' is not allowed; choose one of ['auto', 'cross_entropy', 'soft_cross_entropy', 'mse']"
        in res.output
    )
    res = run("train", "--activation", "gelu", "--out", str(tmp_path / "o"))
    assert res.exit_code != 0 and "model.activation = 'gelu'" in res.output
    cfg.write_text("[train\n")
    res = run("train", "--config", str(cfg))
    assert res.exit_code != 0 and "not valid TOML" in res.output
