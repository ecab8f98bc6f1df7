"""Time the full analysis set in process: ``python -m mscmeta.bundle.bench``.

The set, on a 13-study table of 2x2 counts (the BCG vaccine trials, metafor/metadat
``dat.bcg``, public example data): Mantel-Haenszel OR, RR and RD; Peto OR;
inverse-variance common effect; random effects with each of the seven tau^2 estimators
(each with its Q-profile intervals and prediction interval); REML + HKSJ; RevMan's MH
random effects; leave-one-out and cumulative meta-analysis of the MH OR (from
:mod:`mscmeta.engine.sensitivity` when it is installed; otherwise the same refits are done
directly through :meth:`MetaResult.refit` and the output says so).

Prints the minimum and median wall time over repeated runs; the target is < 20 ms for the
minimum (as ``timeit`` recommends: slower repetitions measure other processes competing for
the CPU, not the code); the median is printed alongside with the machine's load average.

Beside it, the large-k set: a synthetic table of 1,000 studies (seeded, so every run times
the same data) analysed by inverse-variance REML with the Hartung-Knapp-Sidik-Jonkman
adjustment, Q-profile intervals and prediction interval, then leave-one-out and influence
diagnostics (computed across folds at once, :mod:`mscmeta.engine.folds`); target < 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from mscmeta.engine import sensitivity
from mscmeta.engine.binary import meta_binary
from mscmeta.engine.tau2 import TAU2_METHODS

TARGET_MS = 20.0
LARGE_K = 1000
LARGE_TARGET_MS = 1000.0

#: metafor ``dat.bcg`` (Colditz et al. 1994): trial, tpos, tneg, cpos, cneg.
_BCG = (
    (1, 4, 119, 11, 128), (2, 6, 300, 29, 274), (3, 3, 228, 11, 209), (4, 62, 13536, 248, 12619),
    (5, 33, 5036, 47, 5761), (6, 180, 1361, 372, 1079), (7, 8, 2537, 10, 619), (8, 505, 87886, 499, 87892),
    (9, 29, 7470, 45, 7232), (10, 17, 1699, 65, 1600), (11, 186, 50448, 141, 27197), (12, 5, 2493, 3, 2338),
    (13, 27, 16886, 29, 17825),
)


def bcg_table() -> pd.DataFrame:
    """The 13 BCG trials as a binary table (columns study, events_t, n_t, events_c, n_c)."""
    return pd.DataFrame(
        [{"study": f"trial {t}", "events_t": a, "n_t": a + b, "events_c": c, "n_c": c + d, "year": t} for t, a, b, c, d in _BCG]
    )


def _sensitivity_functions() -> tuple[Callable | None, Callable | None]:
    return sensitivity.leave_one_out, sensitivity.cumulative


def analysis_set(data: pd.DataFrame) -> list:
    """Run the full analysis set once; return the results (forcing every lazy part)."""
    out = [meta_binary(data, measure=m) for m in ("OR", "RR", "RD")]
    out.append(meta_binary(data, method="Peto"))
    out.append(meta_binary(data, method="IV"))
    out += [meta_binary(data, method="IV", model="random", tau2_method=t) for t in TAU2_METHODS]
    out.append(meta_binary(data, method="IV", model="random", tau2_method="REML", hksj=True))
    out.append(meta_binary(data, model="random"))
    primary = out[0]
    loo, cum = _sensitivity_functions()
    if loo is not None and cum is not None:
        out.append(loo(primary))
        out.append(cum(primary, data["year"].to_numpy()))
    else:
        frame = data[["study", "events_t", "n_t", "events_c", "n_c"]]
        out += [primary.refit(frame.drop(index=i)) for i in frame.index]
        out += [primary.refit(frame.iloc[: i + 1]) for i in range(len(frame))]
    return out


def large_table(k: int = LARGE_K, seed: int = 2022) -> pd.DataFrame:
    """*k* synthetic trials (seeded): arm sizes 20-400, control risk 5-40%, log OR ~ N(-0.3, 0.2^2)."""
    rng = np.random.default_rng(seed)
    n_t, n_c = rng.integers(20, 401, k), rng.integers(20, 401, k)
    p_c = rng.uniform(0.05, 0.4, k)
    odds_t = p_c / (1 - p_c) * np.exp(rng.normal(-0.3, 0.2, k))
    events_t, events_c = rng.binomial(n_t, odds_t / (1 + odds_t)), rng.binomial(n_c, p_c)
    return pd.DataFrame({"study": [f"trial {i + 1}" for i in range(k)], "events_t": events_t, "n_t": n_t,
                         "events_c": events_c, "n_c": n_c})


def large_set(data: pd.DataFrame) -> list:
    """REML + HKSJ (with Q-profile CI and prediction interval), leave-one-out and influence."""
    fit = meta_binary(data, method="IV", model="random", tau2_method="REML", hksj=True)
    return [fit, sensitivity.leave_one_out(fit), sensitivity.influence(fit)]


def _time(func: Callable[[], object], repeat: int) -> list[float]:
    func()  # warm-up (imports, caches)
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main(argv: list[str] | None = None) -> int:
    """Time :func:`analysis_set` and print the result."""
    parser = argparse.ArgumentParser(prog="python -m mscmeta.bundle.bench", description="Time the full analysis set.")
    parser.add_argument("--repeat", type=int, default=50, help="timed repetitions (default 50)")
    args = parser.parse_args(argv)
    data = bcg_table()
    times = _time(lambda: analysis_set(data), args.repeat)
    large = large_table()
    large_times = _time(lambda: large_set(large), max(1, args.repeat // 10))
    loo, cum = _sensitivity_functions()
    source = "mscmeta.engine.sensitivity" if loo is not None and cum is not None else "direct refits (mscmeta.engine.sensitivity not found)"
    median, best = statistics.median(times), min(times)
    load = f"; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs" if hasattr(os, "getloadavg") else ""
    print(f"analysis set on 13 studies (MH OR/RR/RD, Peto, IV fixed, 7 tau2 estimators with Q-profile CI and PI, "
          f"REML+HKSJ, RevMan MH random; leave-one-out and cumulative via {source})")
    print(f"min {best:.2f} ms, median {median:.2f} ms over {len(times)} runs{load}; "
          f"target < {TARGET_MS:.0f} ms: {'met' if best < TARGET_MS else 'NOT met'}")
    best_l, median_l = min(large_times), statistics.median(large_times)
    print(f"analysis set on {LARGE_K} studies (IV REML + HKSJ with Q-profile CI and PI, leave-one-out, influence; "
          "folds vectorised)")
    print(f"min {best_l:.1f} ms, median {median_l:.1f} ms over {len(large_times)} runs; "
          f"target < {LARGE_TARGET_MS:.0f} ms: {'met' if best_l < LARGE_TARGET_MS else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
