"""Shared helpers for the benchmark scripts in ``scripts/bench/``.

Each benchmark measures its named baseline in the same process and run, prints
a table with the ratio against it, and can write its result as JSON. Import as
``from _common import ...`` (the script's own folder is first on ``sys.path``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def set_threads(n: int = 1) -> None:
    """Pin thread pools to ``n`` threads (env vars for libraries loaded later, and torch)."""
    for var in _THREAD_VARS:
        os.environ[var] = str(n)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(n)


class Timing(NamedTuple):
    """Wall times of one benchmarked callable, in seconds."""

    median: float
    iqr: float
    times: list[float]


def timeit(fn: Callable[[], Any], *, repeats: int, warmup: int = 1) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed (``perf_counter``).

    Returns the median and interquartile range of the timed calls.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    if len(times) >= 2:
        q1, _, q3 = statistics.quantiles(times, n=4, method="inclusive")
    else:
        q1 = q3 = times[0]
    return Timing(statistics.median(times), q3 - q1, times)


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:#.3g}".rstrip(".")
    return str(value)


def print_table(rows: Sequence[dict[str, Any]], title: str = "") -> None:
    """Print ``rows`` (dicts sharing keys) as an aligned text table; numbers right-aligned."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[_fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    numeric = [all(isinstance(r.get(c), int | float) for r in rows if c in r) for c in cols]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    if title:
        print(f"\n{title}")
    print(line(cols))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print(line(row))


def environment() -> dict[str, Any]:
    """Versions and machine facts to store beside a result."""
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "threads": os.environ.get("OMP_NUM_THREADS"),
    }
    for mod in ("numpy", "torch", "neurogym", "gymnasium"):
        m = sys.modules.get(mod)
        if m is not None:
            info[mod] = getattr(m, "__version__", "?")
    return info


def write_json(result: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``result`` as indented JSON, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")


def parse_args(
    description: str,
    argv: Sequence[str] | None = None,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """Parse ``--quick`` (short run) and ``--json PATH``; ``extra(parser)`` adds more options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="short run (smoke test)")
    parser.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    if extra is not None:
        extra(parser)
    return parser.parse_args(argv)
