"""Task primitives (Marton, Lajoie & Rajan 2021): frozen pre-trained modules, new tasks by I/O.

A *primitive* is the recurrent part of a small network trained on one elementary task
(go, delayed go, anti, decision making, match-to-sample). :func:`pretrain_primitives`
trains one single-module network per primitive task and transplants each trained
recurrent block (weights, bias, activation parameters) into one module of a
:class:`~neurosim.models.ModularRNN`, whose recurrent part is then frozen.
:func:`adapt_to_task` gives that network fresh input weights, readout and per-module
gains for a new task: only those are trained. :func:`random_modules` builds the same
architecture from the *untrained* initial blocks, the control without primitives.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from paradigms import YANG19_PRIMITIVES, Paradigm, make

from ._connectivity import ModuleSpec
from ._modular import ModularRNN

_INFO_COLUMNS = ("task", "accuracy", "n_steps", "seed")


def primitive_name(task: str) -> str:
    """The module name of a primitive task id: its short name.

    ``"neurogym/yang19.dlygo-v0"`` → ``"dlygo"`` (namespace, collection prefix and
    version dropped).

    Examples
    --------
    >>> primitive_name("neurogym/yang19.dlygo-v0"), primitive_name("neurogym/GoNogo-v0")
    ('dlygo', 'GoNogo')
    """
    if not isinstance(task, str) or not task:
        raise ValueError(f"a primitive task must be a non-empty paradigm id, got {task!r}")
    name = re.sub(r"-v\d+$", "", task.rsplit("/", 1)[-1]).rsplit(".", 1)[-1]
    return name.replace("->", "_") or task


def _derived_seed(seed: int, k: int) -> int:
    """Independent seed for primitive ``k`` (same for pre-training and the random control)."""
    return int(np.random.SeedSequence([seed, 91, k]).generate_state(1, dtype=np.uint32)[0] >> 1)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    return int(seed)


def _as_paradigms(primitives: Any) -> list[Paradigm]:
    if isinstance(primitives, str | Paradigm) or not isinstance(primitives, Sequence):
        raise ValueError(
            "primitives must be a non-empty list of paradigm ids or Paradigm objects, "
            f"got {primitives!r}"
        )
    if not primitives:
        raise ValueError("primitives must name at least one task, got an empty list")
    out = [make(p) if isinstance(p, str) else p for p in primitives]
    for i, p in enumerate(out):
        if not isinstance(p, Paradigm):
            raise TypeError(
                f"primitives[{i}] must be a paradigm id or a Paradigm, got {type(p).__name__}"
            )
    first = out[0]
    for p in out[1:]:
        for attr in ("n_inputs", "n_outputs", "dt"):
            if getattr(p, attr) != getattr(first, attr):
                raise ValueError(
                    f"every primitive task must share {attr}: {first.id} has "
                    f"{getattr(first, attr)!r}, {p.id} has {getattr(p, attr)!r}"
                )
    return out


def _standalone(
    task: Paradigm,
    name: str,
    *,
    module_size: int,
    tau: float,
    activation: Any,
    sigma_rec: float,
    seed: int,
) -> ModularRNN:
    """One single-module network for one primitive task (its own inputs and readout)."""
    spec = ModuleSpec(name, module_size, tau=tau, activation=activation, sigma_rec=sigma_rec)
    return ModularRNN(
        task.n_inputs, [spec], task.n_outputs, connectivity="none", dt=task.dt, seed=seed
    )


def assemble_modules(
    networks: Sequence[ModularRNN],
    *,
    connectivity: Any = "none",
    seed: int = 0,
    freeze: bool = True,
) -> ModularRNN:
    """One K-module network whose module k is single-module network k, transplanted.

    Module k takes network k's module spec (name, size, τ, activation, noise) and
    exactly its recurrent block ``w_rec``, bias ``b``, activation parameters, initial
    state and input rows ``w_in``; the readout averages the K readouts
    (``W_out = [W_out^1 … W_out^K] / K``, ``b_out`` the mean). With
    ``connectivity="none"`` the modules do not interact, so module k driven by the same
    inputs runs exactly as network k did.

    Parameters
    ----------
    networks : sequence of ModularRNN
        Single-module networks sharing ``n_inputs``, ``n_outputs`` and ``dt``, with
        distinct module names and no module gains.
    connectivity : str, dict, list or array, default "none"
        Inter-module connectivity of the assembled network (see
        :class:`~neurosim.models.ModularRNN`); blocks between modules start random
        (``seed``), the within-module blocks are the transplanted ones whatever it says.
    seed : int, default 0
        Seed of the assembled network (its inter-module weights and masks).
    freeze : bool, default True
        Freeze the recurrent part (:meth:`ModularRNN.freeze_recurrent`).

    Examples
    --------
    >>> import torch
    >>> from neurosim.models import ModularRNN
    >>> from neurosim.models import assemble_modules
    >>> a = ModularRNN(3, [{"name": "a", "size": 4}], 2, seed=1)
    >>> b = ModularRNN(3, [{"name": "b", "size": 5}], 2, seed=2)
    >>> net = assemble_modules([a, b])
    >>> net.module_names, bool(torch.equal(net.w_rec[4:, 4:], b.w_rec))
    (('a', 'b'), True)
    """
    nets = list(networks)
    if not nets:
        raise ValueError("networks must hold at least one single-module ModularRNN")
    for i, n in enumerate(nets):
        if not isinstance(n, ModularRNN):
            raise TypeError(f"networks[{i}] must be a ModularRNN, got {type(n).__name__}")
        if len(n.module_names) != 1:
            raise ValueError(
                f"networks[{i}] must have exactly one module, it has {list(n.module_names)}"
            )
        if n.gains is not None:
            raise ValueError(f"networks[{i}] has module gains; assemble networks without them")
        for attr in ("n_inputs", "n_outputs", "dt"):
            if getattr(n, attr) != getattr(nets[0], attr):
                raise ValueError(
                    f"every network must share {attr}: networks[0] has "
                    f"{getattr(nets[0], attr)!r}, networks[{i}] has {getattr(n, attr)!r}"
                )
    specs = [n.module_specs[0] for n in nets]
    net = ModularRNN(
        nets[0].n_inputs,
        specs,
        nets[0].n_outputs,
        connectivity=connectivity,
        dt=nets[0].dt,
        learn_h0=any(n.learn_h0 for n in nets),
        seed=_check_seed(seed),
    )
    k = len(nets)
    with torch.no_grad():
        net.b_out.copy_(torch.stack([n.b_out.detach().cpu() for n in nets]).mean(0))
        for n, spec in zip(nets, specs, strict=True):
            sl = net.module_slices[spec.name]
            net.w_rec[sl, sl] = n.w_rec.detach().cpu()
            net.b[sl] = n.b.detach().cpu()
            net.h0[sl] = n.h0.detach().cpu()
            net.w_in[sl] = n.w_in.detach().cpu()
            net.w_out[:, sl] = n.w_out.detach().cpu() / k
            _copy_activation(n, spec.name, net, spec.name)
    if freeze:
        net.freeze_recurrent()
    return net


def _copy_activation(src: ModularRNN, src_name: str, dst: ModularRNN, dst_name: str) -> None:
    phi_src = getattr(src, f"phi_{src_name}", None)
    if isinstance(phi_src, torch.nn.Module):
        phi_dst = getattr(dst, f"phi_{dst_name}")
        phi_dst.load_state_dict({k: v.detach().clone() for k, v in phi_src.state_dict().items()})


def _info(tasks: Sequence[Paradigm], names: Sequence[str], rows: list[dict[str, Any]]):
    df = pd.DataFrame(rows, index=pd.Index(list(names), name="module"))
    df.insert(0, "task", [t.id for t in tasks])
    return df[list(_INFO_COLUMNS)]


def pretrain_primitives(
    primitives: Sequence[str | Paradigm] = YANG19_PRIMITIVES,
    *,
    module_size: int = 32,
    tau: float = 100.0,
    activation: Any = "relu",
    sigma_rec: float = 0.05,
    n_steps: int = 1000,
    batch_size: int = 64,
    lr: float = 1e-2,
    eval_trials: int = 500,
    connectivity: Any = "none",
    seed: int = 0,
    device: str = "auto",
    quiet: bool = False,
) -> ModularRNN:
    """Train one network per primitive task and assemble their recurrent parts, frozen.

    For each task ``k`` a single-module :class:`~neurosim.models.ModularRNN` of
    ``module_size`` units (its own input weights and readout; module name = the task's
    short name, e.g. ``"go"``) is trained with :func:`neurosim.train` for ``n_steps``
    steps of ``batch_size`` trials; then :func:`assemble_modules` puts the trained
    blocks side by side (no inter-module connections by default) and freezes the
    recurrent part. Weights, batches and noise of primitive ``k`` are seeded by
    ``(seed, k)``.

    Parameters
    ----------
    primitives : sequence of str or Paradigm, default ``paradigms.YANG19_PRIMITIVES``
        The primitive tasks (go, dlygo, anti, dm1, dms); they must share ``n_inputs``,
        ``n_outputs`` and ``dt``.
    module_size : int, default 32
    tau : float, default 100.0
        Time constant of every module (ms).
    activation : str or dict, default "relu"
    sigma_rec : float, default 0.05
        Recurrent noise (during pre-training and afterwards).
    n_steps, batch_size, lr : int, int, float
        Training budget per primitive (Adam, gradient clipping at 1).
    eval_trials : int, default 500
        Held-out trials for each primitive's final accuracy (the task's own rule).
    connectivity : default "none"
        Inter-module connectivity of the assembled network.
    seed : int, default 0
    device : str, default "auto"
        Where the primitives train; the returned network is on the CPU.
    quiet : bool, default False
        No progress bars.

    Returns
    -------
    ModularRNN
        K modules named after the primitives, recurrent part frozen. Its attribute
        ``primitives`` is a DataFrame indexed by module: ``task`` (id), ``accuracy``
        (final held-out accuracy of the standalone network), ``n_steps`` and ``seed``
        (that network's seed).

    Examples
    --------
    >>> from neurosim.models import pretrain_primitives
    >>> net = pretrain_primitives(["neurogym/yang19.go-v0", "neurogym/yang19.anti-v0"],
    ...                           module_size=8, n_steps=2, eval_trials=20, quiet=True)
    >>> net.module_names, list(net.primitives.columns)
    (('go', 'anti'), ['task', 'accuracy', 'n_steps', 'seed'])
    >>> int(net.parameter_counts(trainable_only=True).loc["total", "recurrent_within"])
    0
    """
    from neurosim._train import train  # lazy: neurosim imports models first

    tasks = _as_paradigms(primitives)
    names = [primitive_name(t.id) for t in tasks]
    seed = _check_seed(seed)
    nets, rows = [], []
    bar = tqdm(tasks, desc="primitives", disable=quiet, leave=False)
    for k, (task, name) in enumerate(zip(bar, names, strict=True)):
        s = _derived_seed(seed, k)
        net = _standalone(
            task,
            name,
            module_size=module_size,
            tau=tau,
            activation=activation,
            sigma_rec=sigma_rec,
            seed=s,
        )
        result = train(
            net,
            task,
            n_steps=n_steps,
            batch_size=batch_size,
            lr=lr,
            seed=s,
            eval_every=n_steps,
            eval_trials=eval_trials,
            device=device,
            quiet=quiet,
        )
        nets.append(net.cpu())
        rows.append({"accuracy": float(result.performance), "n_steps": n_steps, "seed": s})
        bar.set_postfix({name: f"{result.performance:.2f}"})
    out = assemble_modules(nets, connectivity=connectivity, seed=seed)
    out.primitives = _info(tasks, names, rows)
    return out


def random_modules(
    primitives: Sequence[str | Paradigm] = YANG19_PRIMITIVES,
    *,
    module_size: int = 32,
    tau: float = 100.0,
    activation: Any = "relu",
    sigma_rec: float = 0.05,
    connectivity: Any = "none",
    seed: int = 0,
) -> ModularRNN:
    """The architecture of :func:`pretrain_primitives` with untrained, frozen modules.

    Module k holds exactly the *initial* weights that :func:`pretrain_primitives`
    would train (same ``seed``): the control without primitives.

    Returns
    -------
    ModularRNN
        Same modules, sizes and parameter counts as the pre-trained network; its
        ``primitives`` table has ``accuracy`` NaN and ``n_steps`` 0.

    Examples
    --------
    >>> from neurosim.models import random_modules
    >>> net = random_modules(["neurogym/yang19.go-v0", "neurogym/yang19.dms-v0"], module_size=8)
    >>> net.module_names, net.frozen_modules
    (('go', 'dms'), ('go', 'dms'))
    """
    tasks = _as_paradigms(primitives)
    names = [primitive_name(t.id) for t in tasks]
    seed = _check_seed(seed)
    nets, rows = [], []
    for k, (task, name) in enumerate(zip(tasks, names, strict=True)):
        s = _derived_seed(seed, k)
        nets.append(
            _standalone(
                task,
                name,
                module_size=module_size,
                tau=tau,
                activation=activation,
                sigma_rec=sigma_rec,
                seed=s,
            )
        )
        rows.append({"accuracy": math.nan, "n_steps": 0, "seed": s})
    out = assemble_modules(nets, connectivity=connectivity, seed=seed)
    out.primitives = _info(tasks, names, rows)
    return out


def adapt_to_task(
    net: ModularRNN,
    task: str | Paradigm | None = None,
    *,
    n_inputs: int | None = None,
    n_outputs: int | None = None,
    seed: int = 0,
    module_gains: bool = True,
) -> ModularRNN:
    """A copy of ``net`` for a new task: fresh inputs, readout and gains; recurrence frozen.

    The copy has the same modules and exactly the same recurrent weights, biases,
    activation parameters and initial state, all frozen; its ``w_in``, ``w_out`` and
    ``b_out`` are drawn afresh from ``seed`` (as :class:`ModularRNN` initialises them) and
    it has one trainable gain per module (starting at 1, so the dynamics start
    unchanged). Training it changes ``N·I + O·N + O + K`` parameters
    (``parameter_counts(trainable_only=True)``).

    Parameters
    ----------
    net : ModularRNN
        E.g. from :func:`pretrain_primitives` or :func:`random_modules` (not modified).
    task : str or Paradigm, optional
        The new task; gives ``n_inputs``, ``n_outputs`` (and its ``dt`` must equal
        ``net.dt``).
    n_inputs, n_outputs : int, optional
        Sizes when no ``task`` is given (default: ``net``'s).
    seed : int, default 0
    module_gains : bool, default True
        Learn one output gain per module.

    Examples
    --------
    >>> from neurosim.models import ModularRNN
    >>> from neurosim.models import adapt_to_task
    >>> base = ModularRNN(3, [{"name": "a", "size": 4}, {"name": "b", "size": 4}], 2,
    ...                   connectivity="none", seed=0)
    >>> new = adapt_to_task(base, n_inputs=5, n_outputs=3, seed=1)
    >>> int(new.parameter_counts(trainable_only=True).loc["total", "total"])  # 8*5 + 3*8 + 3 + 2
    69
    """
    if not isinstance(net, ModularRNN):
        raise TypeError(f"net must be a ModularRNN, got {type(net).__name__}")
    if task is not None:
        if n_inputs is not None or n_outputs is not None:
            raise ValueError("give either task or n_inputs/n_outputs, not both")
        paradigm = make(task) if isinstance(task, str) else task
        if not isinstance(paradigm, Paradigm):
            raise TypeError(f"task must be a paradigm id or a Paradigm, got {type(task).__name__}")
        if not math.isclose(paradigm.dt, net.dt):
            raise ValueError(
                f"task {paradigm.id!r} has dt {paradigm.dt} ms but the network has dt {net.dt} ms"
            )
        n_inputs, n_outputs = paradigm.n_inputs, paradigm.n_outputs
    cfg = net.config()
    cfg.pop("class")
    cfg.update(
        n_inputs=net.n_inputs if n_inputs is None else n_inputs,
        n_outputs=net.n_outputs if n_outputs is None else n_outputs,
        module_gains=bool(module_gains),
        seed=_check_seed(seed),
    )
    if not isinstance(cfg["connectivity"], str):  # densities redraw with the seed: keep the mask
        cfg["connectivity"] = net.mask.detach().cpu().numpy() > 0
    new = ModularRNN(**cfg)
    with torch.no_grad():
        new.w_rec.copy_(net.w_rec.detach().cpu())
        new.b.copy_(net.b.detach().cpu())
        new.h0.copy_(net.h0.detach().cpu())
    for name in net.module_names:
        _copy_activation(net, name, new, name)
    new.freeze_recurrent()
    if hasattr(net, "primitives"):
        new.primitives = net.primitives.copy()
    return new
