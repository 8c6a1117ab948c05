"""`neurosim perturb CONFIG`: result file, table and figure; config errors name the field."""

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from neurosim import ConfigError
from neurosim._perturb_config import load_perturb_config
from neurosim.cli import main

CONFIG = """
checkpoint = "{ckpt}"
out = "{out}"
n_trials = 16
seeds = [0, 1]
strengths = [0.0, 0.5, 1.0]

[[perturbation]]
target = "state"
operation = "lesion"

[[perturbation]]
label = "recurrent scale"
target = "weights"
operation = "scale"
"""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    res = CliRunner().invoke(
        main, ["train", "--hidden", "16", "--steps", "4", "--quiet", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    return out / "checkpoint"


def test_perturb_writes_result_table_and_figure(checkpoint, tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text(CONFIG.format(ckpt=checkpoint, out=tmp_path / "res"))
    res = CliRunner().invoke(main, ["perturb", str(cfg), "--quiet"])
    assert res.exit_code == 0, res.output
    rob = xr.load_dataset(tmp_path / "res" / "robustness.nc", engine="h5netcdf")
    assert list(rob["perturbation"].values) == ["lesion state 1", "recurrent scale"]
    assert rob["performance"].shape == (2, 2, 3)
    zero = rob["performance"].sel(strength=0.0)
    np.testing.assert_array_equal(zero, np.broadcast_to(rob["unperturbed"], zero.T.shape).T)
    assert (tmp_path / "res" / "robustness.png").stat().st_size > 0
    assert "recurrent scale" in (tmp_path / "res" / "robustness.csv").read_text()
    assert "unperturbed accuracy" in res.output


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ({"n_trial": 3}, r"unknown top-level field\(s\) \['n_trial'\]"),
        ({"strengths": [0.0, 2.0]}, "does not suit 'lesion state 1'.*fraction in"),
        ({"strengths": []}, "strengths must be a non-empty list"),
        ({"seeds": [0.5]}, r"seeds\[0\] must be an integer"),
        ({"perturbation": [{"target": "state"}]}, r"#1: Perturbation needs field\(s\)"),
        ({"perturbation": [{"target": "state", "operation": "lesion", "unit": 1}]}, "unit"),
    ],
)
def test_config_errors_name_the_field(edit, match):
    data = {
        "checkpoint": "ckpt",
        "strengths": [0.0, 1.0],
        "perturbation": [{"target": "state", "operation": "lesion"}],
    }
    with pytest.raises(ConfigError, match=match):
        load_perturb_config({**data, **edit})


def test_missing_checkpoint_says_how_to_make_one(tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text(CONFIG.format(ckpt=tmp_path / "nothing", out=tmp_path / "res"))
    res = CliRunner().invoke(main, ["perturb", str(cfg)])
    assert res.exit_code != 0 and "make demo" in res.output
    assert not (tmp_path / "res").exists()
