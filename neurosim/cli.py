"""The ``neurosim`` command: paradigms, train, simulate, perturb, sweep, fit, demo."""

from __future__ import annotations

import dataclasses
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from ._config import ConfigError


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _run_config(
    config: Path | None,
    overrides: dict[str, dict[str, Any]],
    paradigm: str | None,
    preset: str | None = None,
) -> Any:
    from ._config import RunConfig, load_run_config, read_toml

    try:
        data = read_toml(config) if config is not None else {}
    except ConfigError as err:
        _fail(str(err))
    if paradigm is not None:
        data["paradigm"] = paradigm
    if preset is not None:
        from ._presets import merge_preset, preset_config

        try:
            base = preset_config(preset, data.get("paradigm", RunConfig.paradigm))
        except ConfigError as err:
            _fail(str(err))
        data = merge_preset(base, data)
    for section, values in overrides.items():
        set_values = {k: v for k, v in values.items() if v is not None}
        if set_values:
            data[section] = {**data.get(section, {}), **set_values}
    try:
        return load_run_config(data)
    except ConfigError as err:
        _fail(f"invalid configuration: {err}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="neurosim")
def main() -> None:
    """neurosim: simulate cognitive paradigms through RNNs and analyse the trajectories."""


@main.group()
def paradigms() -> None:
    """List and describe the registered paradigms."""


@paradigms.command("list")
@click.option("--namespace", help="Only this namespace, e.g. 'neurogym'.")
def paradigms_list(namespace: str | None) -> None:
    """Print every registered paradigm id, one a line."""
    import paradigms as _p

    for pid in _p.available(namespace):
        click.echo(pid)


@paradigms.command("describe")
@click.argument("paradigm_id")
def paradigms_describe(paradigm_id: str) -> None:
    """Print a paradigm's sizes, time step, periods and trial variables as JSON."""
    import paradigms as _p

    try:
        task = _p.make(paradigm_id)
    except KeyError as err:
        _fail(str(err.args[0]))
    if getattr(task, "closed_loop", False):  # bandits: no batches, reset/step instead
        click.echo(json.dumps(task.describe(), indent=2, default=str))
        return
    batch = task.batch(4, rng=0)
    info = {
        **task.describe(),
        "n_steps_example": batch.n_steps,
        "periods": sorted(batch.periods),
        "trial_variables": list(batch.trials.columns),
    }
    click.echo(json.dumps(info, indent=2, default=str))


_TRAIN_OPTIONS = [
    click.option(
        "--config",
        "config",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="TOML run config.",
    ),
    click.option("--paradigm", help="Paradigm id (overrides the config)."),
    click.option("--hidden", "n_hidden", type=int, help="Hidden units."),
    click.option(
        "--activation",
        help="relu, tanh, softplus, sigmoid, retanh, identity, adaptive or adaptive_per_neuron.",
    ),
    click.option("--tau", type=float, help="Time constant in ms."),
    click.option("--steps", "n_steps", type=int, help="Maximum gradient steps."),
    click.option("--batch-size", type=int, help="Trials per step."),
    click.option("--lr", type=float, help="Adam learning rate."),
    click.option("--target", "target_performance", type=float, help="Stop at this performance."),
    click.option("--seed", type=int, help="Training seed."),
    click.option("--device", help="auto, cpu or cuda[:k]."),
    click.option("--quiet", is_flag=True, default=None, help="No progress bar."),
]


def _with_train_options(fn: Any) -> Any:
    for opt in reversed(_TRAIN_OPTIONS):
        fn = opt(fn)
    return fn


@main.command()
@_with_train_options
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out/train"),
    show_default=True,
)
@click.option("--resume", is_flag=True, default=None, help="Continue from the checkpoint in --out.")
@click.option(
    "--preset",
    help="Named configuration (neurosim/_presets.py, e.g. quick, full) for the paradigm's "
    "namespace; the config file and flags override it.",
)
def train(
    out: Path,
    resume: bool | None,
    config: Path | None,
    paradigm: str | None,
    preset: str | None,
    **opts: Any,
) -> None:
    """Train a leaky rate RNN on a paradigm; writes a checkpoint and history.csv under --out."""
    from . import _train
    from ._demo import build_model

    model_keys = ("n_hidden", "activation", "tau")
    cfg = _run_config(
        config,
        {
            "model": {k: opts.pop(k) for k in model_keys},
            "train": {**opts, "resume": resume, "checkpoint_dir": str(out / "checkpoint")},
        },
        paradigm,
        preset,
    )
    import paradigms as _p

    try:
        task = _p.make(cfg.paradigm, **cfg.paradigm_kwargs)
    except KeyError as err:
        _fail(str(err.args[0]))
    model = build_model(cfg, task)
    try:
        result = _train.train(model, task, cfg.train)
    except _train.TrainingDivergedError as err:
        _fail(str(err))
    out.mkdir(parents=True, exist_ok=True)
    result.history.to_csv(out / "history.csv", index=False)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    click.echo(
        f"trained {result.steps} steps; performance {result.performance:.3f}; checkpoint {result.checkpoint}"
    )


@main.command()
@click.option(
    "--checkpoint",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="Checkpoint folder from `neurosim train`.",
)
@click.option("--trials", "n_trials", type=int, default=500, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--no-noise", is_flag=True, help="Simulate without recurrent noise.")
@click.option(
    "--out",
    type=click.Path(dir_okay=True, path_type=Path),
    default=Path("trajectories.nc"),
    show_default=True,
    help="Output .nc or .zarr.",
)
def simulate(checkpoint: Path, n_trials: int, seed: int, no_noise: bool, out: Path) -> None:
    """Simulate held-out trials of a trained model and write a trajectory file."""
    import paradigms as _p

    from ._checkpoint import load_checkpoint
    from ._simulate import batch_from_trajectories
    from ._simulate import simulate as _simulate
    from ._trajectories import save

    if n_trials < 1:
        _fail(f"--trials must be a positive integer, got {n_trials}")
    try:
        model, meta = load_checkpoint(checkpoint)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    para = meta["paradigm"]
    task = _p.make(para["id"], **para["kwargs"])
    try:
        ds = _simulate(model, task, n_trials, seed=seed, noise=not no_noise)
        path = save(ds, out)
    except ValueError as err:
        _fail(str(err))
    acc = float(task.performance(ds["output"].values, batch_from_trajectories(ds)).mean())
    click.echo(f"wrote {path} ({n_trials} trials, performance {acc:.3f})")


@main.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Overrides `out`.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def perturb(config: Path, out: Path | None, quiet: bool) -> None:
    """Robustness curves of a trained model: performance against perturbation strength.

    CONFIG is a TOML file naming the checkpoint, the perturbations, strengths and seeds
    (see scripts/configs/perturb_demo.toml). Writes robustness.nc, robustness.csv and
    robustness.png to the output folder.
    """
    import paradigms as _p
    from analyses import compute_robustness
    from analyses.plots import plot_robustness

    from ._checkpoint import load_checkpoint
    from ._perturb_config import load_perturb_config
    from ._trajectories import atomic_write

    try:
        cfg = load_perturb_config(config)
    except (ConfigError, FileNotFoundError) as err:
        _fail(f"invalid configuration {config}: {err}")
    try:
        model, meta = load_checkpoint(cfg.checkpoint)
    except (FileNotFoundError, ValueError) as err:
        _fail(f"{err} (checkpoint = {cfg.checkpoint!r}; `make demo` writes out/demo/checkpoint)")
    para = meta["paradigm"]
    task = _p.make(para["id"], **para["kwargs"])
    try:
        rob = compute_robustness(
            model, task, cfg.perturbations, cfg.strengths, cfg.seeds, n_trials=cfg.n_trials,
            noise=cfg.noise, batch_size=cfg.batch_size, device=cfg.device, quiet=quiet,
        )  # fmt: skip
    except ValueError as err:
        _fail(str(err))
    folder = Path(out or cfg.out)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / "robustness.nc", lambda tmp: rob.to_netcdf(tmp, engine="h5netcdf"))
    table = rob[["mean", "sem"]].to_dataframe().reset_index()
    table.to_csv(folder / "robustness.csv", index=False)
    plot_robustness(rob, path=folder / "robustness.png")
    click.echo(f"unperturbed {rob.attrs['metric']}: {float(rob.unperturbed.mean()):.3f}")
    pivot = table.pivot(index="strength", columns="perturbation", values="mean")
    click.echo(pivot.round(3).to_string())
    click.echo(f"wrote {folder}/robustness.nc, robustness.csv, robustness.png")


@main.command("sweep")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--store",
    type=click.Path(file_okay=False, path_type=Path),
    help="zarr store for the results (overrides the config; default out/<config name>.zarr).",
)
@click.option(
    "--scheduler", help="Dask scheduler address, e.g. tcp://host:8786 (default: a LocalCluster)."
)
@click.option(
    "--workers",
    "n_workers",
    type=click.IntRange(min=1),
    help="LocalCluster workers (default: min(2, cores)).",
)
@click.option(
    "--overwrite", is_flag=True, help="Discard a store written by another function or grid."
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def sweep(
    config: Path,
    store: Path | None,
    scheduler: str | None,
    n_workers: int | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Run a function over a parameter grid on Dask, writing each cell as it finishes.

    CONFIG is a TOML file: function = "package.module:callable", an optional
    store = "path.zarr", a [grid] table of lists (their cartesian product) or [[cells]]
    tables (explicit cells), and an optional [fixed] table of arguments for every cell.
    Running it again with the same store computes only the unfinished cells.
    """
    import os
    import signal

    from ._sweep import SweepError, SweepStoreError, load_sweep_config, summary_table
    from ._sweep import sweep as _sweep

    if os.getcwd() not in sys.path:  # as with `python -m`: modules here are importable
        sys.path.insert(0, os.getcwd())
    try:
        fn, grid, config_store = load_sweep_config(config)
    except (ConfigError, ImportError, TypeError, ValueError) as err:
        _fail(str(err))
    store = store or config_store or Path("out") / f"{config.stem}.zarr"
    if scheduler is not None and n_workers is not None:
        _fail("--workers sizes the local cluster; it cannot be combined with --scheduler")

    def _terminate(signum: int, frame: Any) -> None:  # unwind: close the cluster, free the store
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        ds = _sweep(
            fn, grid, scheduler, store, quiet=quiet, n_workers=n_workers, overwrite=overwrite
        )
    except (SweepStoreError, TypeError, ValueError) as err:
        _fail(str(err))
    except SweepError as err:
        click.echo(summary_table(err.results))
        _fail(str(err))
    except KeyboardInterrupt:
        _fail(f"interrupted; finished cells are kept in {store}: run the same command to resume")
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo(summary_table(ds))


@main.command("grid-analysis")
@click.option(
    "--checkpoint",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="Checkpoint folder of a model trained on a navigation/* paradigm.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out/grid_analysis"),
    show_default=True,
)
@click.option("--trials", "n_trials", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option(
    "--steps",
    "n_steps",
    type=click.IntRange(min=1),
    help="Steps per trial for the rate maps (default: the training length; decoding always "
    "uses the training length).",
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--shuffles", "n_shuffles", type=click.IntRange(min=1), default=100, show_default=True
)
def grid_analysis(
    checkpoint: Path, out: Path, n_trials: int, n_steps: int | None, seed: int, n_shuffles: int
) -> None:
    """Decoding error, rate maps, grid scores, PCA and Lyapunov spectrum of a navigation model.

    Writes summary.json, grid_scores.nc, rate_maps_top.png, decoding.png and pca.png to --out.
    """
    from ._grid_analysis import run_grid_analysis

    try:
        s = run_grid_analysis(
            checkpoint, out, n_trials=n_trials, n_steps=n_steps, seed=seed, n_shuffles=n_shuffles
        )
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    err_cm = s["decoding_error_cm"]
    click.echo(
        f"decoding error {err_cm['mean']:.1f} cm (median {err_cm['median']:.1f}); "
        f"grid units {s['fraction_grid']:.1%} (score60 > {s['grid_threshold']} and > shuffle "
        f"{s['shuffle_threshold']:.2f}); wrote {out}"
    )


@main.command("fit")
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--model",
    type=click.Choice(["constrained", "latent"]),
    default=None,
    help="Data-constrained RNN (one unit per neuron; default) or latent RNN (co-smoothing).",
)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML with `model`, [load] (load_recording options) and [fit] (fitter options).",
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("out/fit"),
    show_default=True,
)  # fmt: skip
@click.option("--dt", type=click.FloatRange(min=0, min_open=True), help="Bin width in ms.")
@click.option("--align-to", help="NWB: trials-table column that is time 0 of each trial.")
@click.option(
    "--window", nargs=2, type=float, help="NWB: START STOP in ms around the alignment event."
)
@click.option("--series", help="NWB: name of a continuous series (calcium, rates) to fit.")
@click.option("--condition", help="Trial column to average PSTHs over (default: guessed).")
@click.option("--seed", type=int, help="Overrides the config's seed.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def fit_command(
    data: Path,
    model: str | None,
    config: Path | None,
    out: Path,
    dt: float | None,
    align_to: str | None,
    window: tuple[float, float] | None,
    series: str | None,
    condition: str | None,
    seed: int | None,
    quiet: bool,
) -> None:
    """Fit a model to recorded activity (NWB, netCDF/zarr recording or trajectories).

    Writes model/ (a checkpoint), predictions.nc, history.csv, summary.json and
    figures/{unit_fits,psth,fit_summary,latents}.png to --out.
    """
    from ._fit_run import run_fit
    from ._recordings import RecordingError

    load = {"dt": dt, "align_to": align_to, "window": window, "series": series}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            s = run_fit(data, model=model, config=config, out=out, load_options=load,
                        condition=condition, seed=seed, quiet=quiet)  # fmt: skip
    except (ConfigError, RecordingError, FileNotFoundError, ValueError, ImportError) as err:
        _fail(str(err))
    for w in caught:  # the fit's own notes (defaults chosen, trials excluded) as plain lines
        if not issubclass(w.category, DeprecationWarning | PendingDeprecationWarning):
            click.echo(f"note: {w.message}", err=True)
    shown = ", ".join(
        f"{k} {v:.3f}" for k, v in s["metrics"].items()
        if k in ("pvar_train", "pvar_val", "co_bps", "baseline_co_bps", "co_pvar", "psth_r2")
    )  # fmt: skip
    rec = s["recording"]
    click.echo(
        f"{s['model']} fit of {rec['n_units']} units × {rec['n_trials']} trials: {shown}; "
        f"wrote {out}"
    )


@main.command("teacher-recording")
@click.argument("checkpoint", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
    help="Output .nwb (spike times; needs --kind counts) or .nc.",
)  # fmt: skip
@click.option("--trials", "n_trials", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--kind", type=click.Choice(["counts", "rates"]), default="counts", show_default=True)
@click.option("--noise-sd", type=click.FloatRange(min=0), default=0.05, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def teacher_recording_command(
    checkpoint: Path, out: Path, n_trials: int, kind: str, noise_sd: float, seed: int
) -> None:
    """Record a trained model on its paradigm as ground-truth data for `neurosim fit`.

    Every unit becomes a neuron: Poisson spike counts (--kind counts) or noisy rates.
    """
    from ._fit_run import run_teacher_recording

    try:
        rec = run_teacher_recording(
            checkpoint, out, n_trials=n_trials, kind=kind, seed=seed, noise_sd=noise_sd
        )
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    click.echo(
        f"wrote {out} ({rec.sizes['unit']} units × {rec.sizes['trial']} trials × "
        f"{rec.sizes['time']} bins of {rec.attrs['dt']:g} ms, {kind})"
    )


@main.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out/demo"),
    show_default=True,
)
@click.option("--quiet", is_flag=True, help="No progress bar or step messages.")
def demo(out: Path, quiet: bool) -> None:
    """Train on PerceptualDecisionMaking, simulate 500 held-out trials, save and plot."""
    from ._demo import run_demo

    summary = run_demo(out, quiet=quiet)
    if summary["heldout_accuracy"] < 0.85:
        click.echo(f"demo accuracy {summary['heldout_accuracy']:.3f} is below 0.85", err=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
