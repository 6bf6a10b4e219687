"""The harness: find the parts, run them, record the machine, regenerate BENCHMARKS.md.

Each run of a part writes `<results>/<part>.json`: the part's own raw numbers under `results`,
plus the machine block (CPU, cores, threads, versions, date, git commit, load average before and
after) and the part's wall time. BENCHMARKS.md is then rebuilt from every results file present,
so a part that was not run keeps its previous numbers. `--quick` writes to a temporary directory
and never touches `bench/results/`.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import inspect
import json
import os
import pkgutil
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "BENCHMARKS.md"


@dataclass(frozen=True)
class Part:
    name: str
    module: ModuleType

    @property
    def title(self) -> str:
        return getattr(self.module, "TITLE", self.name)

    @property
    def order(self) -> int:
        return getattr(self.module, "ORDER", 100)

    def accepts(self, option: str) -> bool:
        return option in inspect.signature(self.module.run).parameters


def discover() -> dict[str, Part]:
    """Every module of this package not starting with `_` that has `run` and `render`."""
    found = []
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        if callable(getattr(module, "run", None)) and callable(getattr(module, "render", None)):
            found.append(Part(info.name, module))
    found.sort(key=lambda p: (p.order, p.name))
    return {p.name: p for p in found}


# --- the machine block ---------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def _version(module: str) -> str:
    try:
        return importlib.import_module(module).__version__
    except Exception:  # not installed, or no __version__: say so in the table
        return "missing"


def machine() -> dict[str, Any]:
    import torch

    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            name: _version(name)
            for name in ("torch", "onnxruntime", "onnx", "numpy", "sklearn", "rocketc")
        },
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


# --- running -------------------------------------------------------------------------------
def results_stem(part: Part, device: str) -> str:
    """`paper.json` on CPU; a device-specific run is kept beside it (`paper.cuda.json`)."""
    return part.name if device == "cpu" or not part.accepts("device") else f"{part.name}.{device}"


def cases_field(part: Part) -> str | None:
    """The list in a part's results whose entries (each with a `key`) can be rerun alone."""
    return getattr(part.module, "CASES", None)


def stamp(load: float | None = None) -> dict[str, Any]:
    """When and at which commit a case was measured, and the load before it."""
    m = machine()
    return {"date": m["date"], "commit": m["git_commit"][:12], "load": load}


def stamp_line(case: dict[str, Any]) -> list[str]:
    """Under a case's heading: when and at which commit it was measured, where it says so."""
    m = case.get("measured")
    if not m:
        return []
    busy = f", load {m['load']:.2f} before" if m.get("load") is not None else ""
    return [f"_This case: measured {m['date']} at commit `{m['commit']}`{busy}._", ""]


def _merge(
    field: str, new: list[dict[str, Any]], previous: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The previous run's cases with the rerun ones replaced in place (new ones appended)."""
    if previous is None or not isinstance(previous.get("results", {}).get(field), list):
        return new
    by_key = {c["key"]: c for c in new}
    kept = [by_key.pop(c["key"], c) for c in previous["results"][field]]
    return kept + list(by_key.values())


def run_part(
    part: Part, quick: bool, device: str, results_dir: Path, only: list[str] | None = None
) -> Path | None:
    """Run one part (or only some of its cases) and write its results file; None when the
    part skipped itself. A subset keeps the other cases of the previous results file."""
    options: dict[str, Any] = {"device": device} if part.accepts("device") else {}
    if only:
        options["only"] = tuple(only)
    load_before = _load()
    started = time.perf_counter()
    raw = part.module.run(quick, **options)
    seconds = time.perf_counter() - started
    if raw.get("skipped"):
        print(f"[bench] {part.name}: skipped: {raw['skipped']}", file=sys.stderr)
        return None
    path = results_dir / f"{results_stem(part, device)}.json"
    field = cases_field(part)
    if field is not None:
        now = stamp(load_before)
        for case in raw[field]:  # a case the part kept from an earlier run keeps its stamp
            case.setdefault("measured", now)
        if only:
            previous = json.loads(path.read_text()) if path.is_file() else None
            raw = {
                **(previous or {}).get("results", {}),
                **raw,
                field: _merge(field, raw[field], previous),
            }
    record = {
        "part": part.name,
        "quick": quick,
        "machine": machine(),
        "load_average_1min": {"before": load_before, "after": _load()},
        "wall_seconds": round(seconds, 2),
        "results": raw,
    }
    if only:
        record["only"] = list(only)
    results_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True, allow_nan=True) + "\n")
    print(f"[bench] {part.name}: {seconds:.1f} s -> {path}", file=sys.stderr)
    return path


# --- BENCHMARKS.md -------------------------------------------------------------------------
def _machine_line(record: dict[str, Any]) -> str:
    m = record["machine"]
    v = m["versions"]
    commit = (m["git_commit"] or "unknown")[:12] + (
        " (uncommitted changes)" if m["git_dirty"] else ""
    )
    load = record["load_average_1min"]
    cores = m["cores"] or 1
    line = (
        f"Measured {m['date']} at commit `{commit}` on {m['cpu']} ({m['cores']} cores, torch "
        f"threads {m['torch_threads']}{', ' + m['cuda'] if m.get('cuda') else ''}); Python "
        f"{m['python']}, torch {v['torch']}, onnxruntime {v['onnxruntime']}. Load average "
        f"{load['before']:.2f} before, {load['after']:.2f} after; the part took "
        f"{record['wall_seconds']:.0f} s."
    )
    if record.get("only"):
        line += (
            f" That run measured only {', '.join(record['only'])}; every other case keeps the "
            "date and commit under its heading."
        )
    if load["before"] > 0.5 * cores:
        line += (
            f" **The machine was busy before this part started (load {load['before']:.2f} on "
            f"{cores} cores): its timings are noisy.**"
        )
    return line


def _targets_table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = [
        "## Targets at a glance",
        "",
        "Ratios are measured side by side in one run; absolute times are context only. "
        "Each part's section says why a missed target is missed, from a profile.",
        "",
        "| part | target | measured | met |",
        "|---|---|---|---|",
    ]
    for row in rows:
        met = {True: "yes", False: "**no**", None: "n/a"}[row["met"]]
        lines.append(f"| {row['part']} | {row['target']} | {row['measured']} | {met} |")
    return [*lines, ""]


def write_doc(results_dir: Path, doc: Path, parts: dict[str, Part]) -> Path:
    """Rebuild BENCHMARKS.md from every results file in `results_dir`."""
    records = []
    for path in sorted(results_dir.glob("*.json")):
        record = json.loads(path.read_text())
        part = parts.get(record.get("part", ""))
        if part is not None:
            records.append((part, path, record))
    records.sort(key=lambda item: (item[0].order, item[1].stem))
    sections, targets = [], []
    for part, path, record in records:
        body = part.module.render(record["results"])
        title = part.title + ("" if path.stem == part.name else f" ({path.stem.split('.', 1)[1]})")
        section = [f"## {title}", ""]
        if record["quick"]:
            section += ["> **Quick smoke run: these numbers only show that the part works.**", ""]
        section += [f"_{_machine_line(record)}_", "", body.rstrip(), ""]
        plot = getattr(part.module, "plot", None)
        if plot is not None:
            image = results_dir / f"{path.stem}.png"
            plot(record["results"], image)
            section += [f"![{title}]({os.path.relpath(image, doc.parent)})", ""]
        sections.append("\n".join(section))
        if hasattr(part.module, "targets"):
            targets += [{"part": title, **t} for t in part.module.targets(record["results"])]
    head = [
        "# rocketc benchmarks",
        "",
        "<!-- Generated by `python -m bench` from bench/results/*.json; edit bench/, not this "
        "file. -->",
        "",
        "Every number here is regenerated by one command from the repository root:",
        "",
        "```bash",
        ".venv/bin/python -m bench                 # every part; or name some: "
        "python -m bench paper cotrain",
        ".venv/bin/python -m bench tune:movielens  # only some cases of a part; the others "
        "keep theirs",
        ".venv/bin/python -m bench --render-only   # rebuild this file from bench/results/",
        ".venv/bin/python -m bench --quick         # smoke run into a temporary directory",
        ".venv/bin/python -m bench paper --device cuda   # CIFAR-10 at full size (GPU + "
        "data/cifar10.npz)",
        "```",
        "",
        "Each section names the machine and commit it was measured on; a part not rerun keeps "
        "its previous numbers. Raw measurements (every seed, every timing) are in "
        "`bench/results/<part>.json`.",
        "",
    ]
    head += [
        "| part | what it measures | full run |",
        "|---|---|---|",
        *(
            f"| `{p.name}` | {(p.module.__doc__ or '').strip().splitlines()[0].split(': ', 1)[-1]} "
            f"| {getattr(p.module, 'EXPECTED', '-')} |"
            for p in parts.values()
        ),
        "",
    ]
    if not sections:
        head += ["No results yet: run `.venv/bin/python -m bench` on a quiet machine.", ""]
    text = "\n".join(head + _targets_table(targets) + sections).rstrip() + "\n"
    doc.write_text(text, encoding="utf-8")
    return doc


# --- command line --------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parts = discover()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run rocketc's benchmarks and regenerate BENCHMARKS.md.",
    )
    parser.add_argument(
        "parts",
        nargs="*",
        metavar="PART",
        help=f"default: all ({', '.join(parts)}); PART:KEY,KEY reruns only those cases of a "
        "part (the others keep their numbers), e.g. tune:movielens",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny smoke run into a temporary directory"
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cuda: the paper part's full-size CIFAR-10 mode (needs a GPU and data/cifar10.npz)",
    )
    parser.add_argument("--threads", type=int, help="torch threads for the training parts")
    parser.add_argument(
        "--out", type=Path, help="write results/ and BENCHMARKS.md under this directory"
    )
    parser.add_argument(
        "--render-only", action="store_true", help="only rebuild BENCHMARKS.md from the results"
    )
    args = parser.parse_args(argv)
    only: dict[str, list[str]] = {}
    for i, given in enumerate(args.parts):
        name, _, keys = given.partition(":")
        args.parts[i] = name
        if keys:
            only[name] = keys.split(",")
    unknown = [p for p in args.parts if p not in parts]
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {list(parts)}")
    for name in only:
        if cases_field(parts[name]) is None or not parts[name].accepts("only"):
            parser.error(f"part {name} has no cases to pick from; run it whole")
    if args.out is not None:
        results_dir, doc = args.out / "results", args.out / "BENCHMARKS.md"
    elif args.quick:
        out = Path(tempfile.mkdtemp(prefix="rocketc-bench-quick-"))
        results_dir, doc = out / "results", out / "BENCHMARKS.md"
    else:
        results_dir, doc = RESULTS, DOC
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    failed = []
    if not args.render_only:
        for name in args.parts or list(parts):
            try:
                run_part(parts[name], args.quick, args.device, results_dir, only.get(name))
            except Exception:
                traceback.print_exc()
                print(f"[bench] {name}: FAILED; its previous results file is kept", file=sys.stderr)
                failed.append(name)
    path = write_doc(results_dir, doc, parts)
    print(f"[bench] wrote {path}", file=sys.stderr)
    return 1 if failed else 0
