"""scale: data-parallel training throughput at 1 and 2 processes, and GAUC at 1M rows.

Training: the CTR spec (`ctr_synthetic`) trained as `rocketc train` trains it, each run a fresh
`torchrun --standalone --nproc-per-node N` (bench/_scale_worker.py), the same global batch
throughout. Configurations: 1 process on 1 thread, 2 processes on 1 thread each (the scaling
with cores), and 1 process with a thread per core (what one process makes of the same cores).
Throughput = training rows / an epoch's training seconds on rank 0 (validation and checkpoints
excluded), the first epoch dropped as warm-up; the configurations interleave, repeat by repeat.

GAUC: `rocketc.data.metrics.gauc` (one sort, rank sums per group) on 1M rows in 50k groups,
against the per-group scikit-learn loop it replaced. The loop is timed on a subsample of whole
groups only and extrapolated linearly in the number of groups (its cost is per group), which
the table says; both give the same value on that subsample.

Streaming: a synthetic Parquet table (10M rows; 100k with --quick) of 8 categorical and 2 dense
columns, written in a temp dir chunk by chunk, then one `data.stream: true` fit pass and one
epoch of training batches in a fresh process (bench/_stream_worker.py), whose peak RSS is
reported. Full run: about 7 minutes.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._stats import spread

TITLE = "Scale: data-parallel throughput and GAUC at 1M rows"
ORDER = 70
EXPECTED = "about 7 min"
ROOT = Path(__file__).resolve().parent.parent
SPEC = "ctr_synthetic"
ALL = 0  # torch threads: one per core
FULL = {
    "configs": ((1, 1), (2, 1), (1, ALL)),  # (processes, torch threads per process)
    "repeats": 3,
    "epochs": 6,
    "sets": (),
    "gauc": {"rows": 1_000_000, "groups": 50_000, "loop_groups": 2_000, "repeats": 3},
    "stream_rows": 10_000_000,
}
QUICK = {
    "configs": ((1, 1), (2, 1)),
    "repeats": 1,
    "epochs": 2,
    "sets": (),
    "gauc": {"rows": 100_000, "groups": 5_000, "loop_groups": 200, "repeats": 1},
    "stream_rows": 100_000,
}
LIMIT_S = 600  # one training run; a hung one fails the part instead of stalling it


def run(quick: bool) -> dict[str, Any]:
    plan = QUICK if quick else FULL
    return {
        "spec": SPEC,
        "sets": list(plan["sets"]),
        "cores": _cores(),
        "training": training(plan),
        "gauc": gauc_timing(**plan["gauc"]),
        "streaming": streaming(plan["stream_rows"]),
    }


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# --- training throughput ----------------------------------------------------------------------
def training(plan: dict[str, Any]) -> dict[str, Any]:
    runs = []
    for repeat in range(plan["repeats"]):
        for processes, threads in plan["configs"]:
            record = _train_once(processes, threads or _cores(), plan["epochs"], plan["sets"])
            seconds = record["epoch_seconds"][1:] or record["epoch_seconds"]
            rows_per_s = [record["train_rows"] / s for s in seconds]
            runs.append({"repeat": repeat, **record, "rows_per_s": rows_per_s})
            print(
                f"[bench] scale: {processes} x {record['torch_threads']} thread(s): "
                f"{statistics.median(rows_per_s):,.0f} rows/s",
                file=sys.stderr,
            )
    configs = []
    for processes, threads in plan["configs"]:
        key = (processes, threads or _cores())
        rates = [
            rate
            for run in runs
            if (run["processes"], run["torch_threads"]) == key
            for rate in run["rows_per_s"]
        ]
        configs.append({"processes": key[0], "torch_threads": key[1], "rows_per_s": spread(rates)})
    base = configs[0]["rows_per_s"]["median"]
    for entry in configs:
        entry["speedup"] = entry["rows_per_s"]["median"] / base
    return {"epochs": plan["epochs"], "runs": runs, "configs": configs}


def _train_once(processes: int, threads: int, epochs: int, sets: tuple[str, ...]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with tempfile.TemporaryDirectory(prefix="rocketc-bench-scale-") as tmp:
        out = Path(tmp) / "run.json"
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            str(processes),
            "-m",
            "bench._scale_worker",
            str(ROOT / "specs" / f"{SPEC}.yaml"),
            str(epochs),
            str(out),
            *sets,
        ]
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=LIMIT_S
        )
        if done.returncode != 0:
            raise RuntimeError(f"{processes}-process training failed:\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())


# --- GAUC ---------------------------------------------------------------------------------------
def gauc_timing(rows: int, groups: int, loop_groups: int, repeats: int) -> dict[str, Any]:
    from rocketc.data.metrics import gauc

    target, scores, group = synthetic_impressions(rows, groups)
    vectorised = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = gauc(target, scores, group)
        vectorised.append(time.perf_counter() - start)
    # The loop on whole groups 0 .. loop_groups-1 (the ids are random, so a fair sample).
    keep = group < loop_groups
    start = time.perf_counter()
    loop_value = gauc_by_loop(target[keep], scores[keep], group[keep])
    loop_s = time.perf_counter() - start
    return {
        "rows": rows,
        "groups": groups,
        "value": value,
        "vectorised_s": spread(vectorised),
        "loop_groups": loop_groups,
        "loop_rows": int(keep.sum()),
        "loop_s": loop_s,
        "loop_extrapolated_s": loop_s * groups / loop_groups,
        "subsample_gap": abs(loop_value - gauc(target[keep], scores[keep], group[keep])),
    }


def synthetic_impressions(rows: int, groups: int, seed: int = 0):
    """Clicks with a per-user base rate, scores that know a little, ties from rounding."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, groups, rows)
    taste = rng.normal(size=groups)
    signal = rng.normal(size=rows)
    target = (rng.random(rows) < 1 / (1 + np.exp(-(taste[group] + signal - 2)))).astype(np.float32)
    scores = np.round(signal + rng.normal(scale=2.0, size=rows), 3)
    return target, scores, group


def gauc_by_loop(target: np.ndarray, scores: np.ndarray, group: np.ndarray) -> float:
    """The definition, group by group, as rocketc computed it before: impression-weighted
    scikit-learn AUC over the groups with both labels."""
    from sklearn.metrics import roc_auc_score

    total, weight = 0.0, 0
    for g in np.unique(group):
        mask = group == g
        y = target[mask]
        if y.min() == y.max():
            continue
        total += mask.sum() * roc_auc_score(y, scores[mask])
        weight += mask.sum()
    return total / weight if weight else float("nan")


# --- streaming ---------------------------------------------------------------------------------
def streaming(rows: int) -> dict[str, Any]:
    """Peak RSS of a fresh process that streams one epoch of a `rows`-row Parquet table."""
    with tempfile.TemporaryDirectory(prefix="rocketc-bench-stream-") as tmp:
        table, out = Path(tmp) / "table.parquet", Path(tmp) / "stream.json"
        synthetic_table(table, rows)
        size_mb = table.stat().st_size / 2**20
        command = [sys.executable, "-m", "bench._stream_worker", str(table), str(out)]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3 * LIMIT_S
        )
        if done.returncode != 0:
            raise RuntimeError(f"streaming failed:\n{done.stderr[-3000:]}")
        record = json.loads(out.read_text())
    print(
        f"[bench] scale: streamed {rows:,} rows, peak RSS {record['peak_rss_mb']:.0f} MB",
        file=sys.stderr,
    )
    return {"table_rows": rows, "file_mb": size_mb, **record}


def synthetic_table(path: Path, rows: int, chunk: int = 1_000_000, seed: int = 0) -> None:
    """8 categorical columns (c0-c5 ids up to 1M, c6-c7 up to 100), 2 dense, a 0/1 label;
    written chunk by chunk, so writing never holds the table either."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    writer = None
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        columns = {f"c{k}": rng.integers(0, 1_000_000, n) for k in range(6)}
        columns |= {f"c{k}": rng.integers(0, 100, n) for k in (6, 7)}
        columns |= {"d0": rng.normal(size=n), "d1": rng.exponential(size=n)}
        columns["y"] = (rng.random(n) < 0.1).astype(np.int64)
        batch = pa.table(columns)
        writer = writer or pq.ParquetWriter(path, batch.schema)
        writer.write_table(batch, row_group_size=min(n, 262_144))
    if writer is not None:
        writer.close()


# --- BENCHMARKS.md ------------------------------------------------------------------------------
def render(results: dict[str, Any]) -> str:
    t = results["training"]
    sets = f" with {', '.join(results['sets'])}" if results["sets"] else ""
    first = t["runs"][0]
    lines = [
        f"`{results['spec']}`{sets}: {first['train_rows']:,} training rows, the spec's global "
        f"batch, {t['epochs']} epochs per run (the first dropped), {results['cores']} cores, "
        "gloo. rows/s = training rows / rank 0's epoch time.",
        "",
        "| processes | torch threads each | rows/s median (IQR) | epochs measured | "
        "vs 1 process, 1 thread |",
        "|---:|---:|---:|---:|---:|",
    ]
    for entry in t["configs"]:
        r = entry["rows_per_s"]
        lines.append(
            f"| {entry['processes']} | {entry['torch_threads']} | {r['median']:,.0f} "
            f"({r['q1']:,.0f}–{r['q3']:,.0f}) | {r['n']} | {entry['speedup']:.2f}× |"
        )
    g = results["gauc"]
    v = g["vectorised_s"]
    lines += [
        "",
        f"GAUC of {g['rows']:,} impressions in {g['groups']:,} groups (value {g['value']:.6f}): "
        "the vectorised rank sum against the per-group scikit-learn loop it replaced. **The "
        f"loop was timed on {g['loop_groups']:,} whole groups ({g['loop_rows']:,} rows) and "
        f"extrapolated ×{g['groups'] / g['loop_groups']:.0f} by group count**; on that "
        f"subsample the two values differ by {g['subsample_gap']:.1e}.",
        "",
        "| method | seconds | |",
        "|---|---:|---|",
        f"| vectorised (`metrics.gauc`) | {v['median']:.2f} | median of {v['n']} |",
        f"| per-group loop | {g['loop_extrapolated_s']:.0f} | extrapolated from "
        f"{g['loop_s']:.2f} s |",
        "",
        f"Speed-up: {g['loop_extrapolated_s'] / v['median']:,.0f}×.",
    ]
    if "streaming" in results:  # results from before streaming tables have none
        st = results["streaming"]
        lines += [
            "",
            f"Streaming: one epoch of a {st['table_rows']:,}-row Parquet table "
            f"({st['file_mb']:,.0f} MB; 8 categorical + 2 dense columns) read with "
            "`data.stream: true` in a fresh process: the one-pass fit (vocabularies, hashed-id "
            f"statistics, mean/std; 1% val + 1% test) took {st['fit_s']:.1f} s, "
            f"the epoch's {st['rows']:,} training rows {st['epoch_s']:.1f} s "
            f"({st['rows'] / st['epoch_s']:,.0f} rows/s); **peak RSS {st['peak_rss_mb']:,.0f} "
            "MB** (torch included).",
        ]
        if st.get("note"):
            lines += ["", st["note"]]
    return "\n".join(lines) + "\n"
