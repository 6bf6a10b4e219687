"""compiler: `rocketc compile` of every shipped spec and CLI start-up, end to end.

Each command runs as a fresh subprocess (the console script, as a user types it), in
interleaved rounds; the table shows the median and range per command next to a bare
`python -c pass`, the interpreter's own floor, and a bare import of the libraries `check` stands
on (typer, pydantic, networkx, ruamel.yaml: the stack the project chose), their floor. For the
slowest `check` and `compile`, a `python -X importtime` run splits import time by top-level
package (with the module that first imports it: that is where a lazy import would go), and a
cProfile run splits the rest (the `ruff format` subprocess of code generation, the compiler's own
work). Full run: about 2 minutes.
"""

from __future__ import annotations

import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TITLE = "Compiler and CLI start-up"
ORDER = 50
EXPECTED = "about 1.5 min"
ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"compile": 0.5, "check": 0.3}
LIBRARIES = "python: import typer, pydantic, networkx, ruamel.yaml"
# What `rocketc check` cannot start without: typer parses the command line (and imports
# pydantic itself), pydantic validates the spec, networkx holds its graph, ruamel.yaml reads it
# with line numbers.
_LIBRARIES_CODE = (
    "import typer, typer._adapters, networkx, ruamel.yaml; from pydantic import BaseModel"
)
FULL = {"rounds": 10, "warm_up": True}
QUICK = {"rounds": 1, "warm_up": False, "specs": ("quickstart",)}


def _rocketc() -> list[str]:
    script = Path(sys.executable).with_name("rocketc")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "rocketc"]


def _specs(plan: dict[str, Any]) -> list[Path]:
    names = plan.get("specs")
    paths = sorted((ROOT / "specs").glob("*.yaml"))
    return [p for p in paths if names is None or p.stem in names]


def _layers(path: Path) -> int:
    from rocketc.compiler.load import load_file

    return len(load_file(path).data.get("layers") or [])


def run(quick: bool) -> dict[str, Any]:
    plan = QUICK if quick else FULL
    specs = _specs(plan)
    largest = max(specs, key=lambda p: (_layers(p), p.name))
    with tempfile.TemporaryDirectory(prefix="rocketc-bench-compiler-") as tmp:
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            LIBRARIES: [sys.executable, "-c", _LIBRARIES_CODE],
            "rocketc --help": [*_rocketc(), "--help"],
        }
        for spec in specs:
            rel = spec.relative_to(ROOT)
            commands[f"rocketc check {rel}"] = [*_rocketc(), "check", str(rel)]
            commands[f"rocketc compile {rel}"] = [
                *_rocketc(),
                "compile",
                str(rel),
                "-o",
                str(Path(tmp) / spec.stem),
            ]
        times: dict[str, list[float]] = {name: [] for name in commands}
        for argv in commands.values() if plan["warm_up"] else ():  # file cache; untimed
            _timed(argv)
        for r in range(plan["rounds"]):
            names = list(commands) if r % 2 == 0 else list(reversed(commands))
            for name in names:
                times[name].append(_timed(commands[name]))
        medians = {name: statistics.median(v) for name, v in times.items()}
        slowest = {
            kind: max((n for n in commands if n.startswith(f"rocketc {kind} ")), key=medians.get)
            for kind in ("check", "compile")
        }
        breakdown = {
            kind: {
                "command": name,
                "imports": import_breakdown(commands[name][len(_rocketc()) :]),
                "profile": profile_breakdown(commands[name][len(_rocketc()) :], Path(tmp)),
            }
            for kind, name in slowest.items()
        }
    print(f"[bench] compiler: {medians}", file=sys.stderr)
    return {
        "rounds": plan["rounds"],
        "largest_spec": str(largest.relative_to(ROOT)),
        "times_s": times,
        "summary": {
            name: {"median": medians[name], "min": min(v), "max": max(v)}
            for name, v in times.items()
        },
        "breakdown": breakdown,
    }


def _timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


OWN = "rocketc"
_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def import_breakdown(args: list[str], top: int = 12) -> dict[str, Any]:
    """`python -X importtime -m rocketc ARGS`: self time per top-level package, and its importer."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "rocketc", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return parse_importtime(proc.stderr, top)


def parse_importtime(text: str, top: int = 12) -> dict[str, Any]:
    """Self time per top-level package (per module for rocketc's own) from `-X importtime`
    output, each with the module that first imported it."""
    entries = []  # (self_us, cumulative_us, depth, module), in the order Python prints them
    for line in text.splitlines():
        m = _IMPORT_LINE.match(line)
        if m:
            entries.append((int(m[1]), int(m[2]), len(m[3]) // 2, m[4]))
    by_package: dict[str, dict[str, Any]] = {}
    for i, (self_us, _, depth, module) in enumerate(entries):
        # rocketc's own modules count one by one (their self time is mostly pydantic building
        # the spec models' validators at class creation); other packages as a whole.
        package = module if module.startswith(OWN) else module.split(".")[0]
        row = by_package.setdefault(package, {"self_us": 0, "modules": 0, "first_importer": None})
        row["self_us"] += self_us
        row["modules"] += 1
        if row["first_importer"] is None:
            # Children print before their parent: the importer is the next shallower line.
            parent = next((e[3] for e in entries[i + 1 :] if e[2] < depth), None)
            while parent is not None and parent.split(".")[0] == package.split(".")[0] != OWN:
                j = next(k for k in range(i + 1, len(entries)) if entries[k][3] == parent)
                parent = next((e[3] for e in entries[j + 1 :] if e[2] < entries[j][2]), None)
            row["first_importer"] = parent or "(the command)"
    total = sum(e[0] for e in entries)
    ranked = sorted(by_package.items(), key=lambda kv: -kv[1]["self_us"])
    return {"total_us": total, "packages": dict(ranked[:top])}


def profile_breakdown(args: list[str], tmp: Path) -> dict[str, float]:
    """Where the time of `rocketc ARGS` goes beyond imports: cProfile of one run, in seconds."""
    out = tmp / "profile.out"
    argv = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "rocketc", *args]
    subprocess.run(argv, cwd=ROOT, capture_output=True, check=True)
    # pstats rows: (file, line, function) -> (calls, primitive calls, own s, cumulative s, ...);
    # a recursive function's cumulative time counts its outermost calls only.
    stats = pstats.Stats(str(out)).stats

    def cumulative(function: str, file_suffix: str = "") -> float:
        return sum(
            row[3]
            for (file, _, name), row in stats.items()
            if name == function and file.endswith(file_suffix)
        )

    return {
        "profiled_total_s": max(row[3] for row in stats.values()),
        "imports_s": cumulative("_find_and_load"),
        "subprocess_s": cumulative("run", "subprocess.py"),
    }


# --- BENCHMARKS.md -------------------------------------------------------------------------
def render(results: dict[str, Any]) -> str:
    floor = results["summary"]["python -c pass"]["median"]
    lines = [
        f"Wall time of each command as a fresh process, {results['rounds']} interleaved "
        f"round(s), median and range. `python -c pass` is the interpreter's floor "
        f"({floor * 1e3:.0f} ms): no CLI can start faster. "
        + (
            f"`{LIBRARIES}` imports the libraries `check` cannot start without "
            f"({results['summary'][LIBRARIES]['median'] * 1e3:.0f} ms): a `check` built on "
            "them starts no faster. "
            if LIBRARIES in results["summary"]
            else ""
        )
        + f"Largest shipped spec: `{results['largest_spec']}`.",
        "",
        "| command | median | range | above the floor |",
        "|---|---:|---:|---:|",
    ]
    for name, s in results["summary"].items():
        lines.append(
            f"| `{name}` | {s['median'] * 1e3:.0f} ms | {s['min'] * 1e3:.0f}–{s['max'] * 1e3:.0f} "
            f"ms | {(s['median'] - floor) * 1e3:+.0f} ms |"
        )
    lines += _why_missed(results)
    for b in results["breakdown"].values():
        imports, prof = b["imports"], b["profile"]
        own = prof["profiled_total_s"] - prof["imports_s"] - prof["subprocess_s"]
        lines += [
            "",
            f"**`{b['command']}`**: imports take {imports['total_us'] / 1e3:.0f} ms "
            "(`-X importtime`, self time summed per top-level package; the module that first "
            "imports a package is where a lazy import would remove it from start-up). cProfile "
            f"of one run: {prof['profiled_total_s'] * 1e3:.0f} ms in all, of which imports "
            f"{prof['imports_s'] * 1e3:.0f} ms and subprocesses (the `ruff format` step of "
            f"code generation) {prof['subprocess_s'] * 1e3:.0f} ms, leaving {own * 1e3:.0f} ms "
            "of rocketc's own work (profiling inflates the Python-level parts).",
            "",
            "| package | import ms (self) | modules | first imported by |",
            "|---|---:|---:|---|",
        ]
        ranked = sorted(imports["packages"].items(), key=lambda kv: -kv[1]["self_us"])
        for package, row in ranked:
            lines.append(
                f"| {package} | {row['self_us'] / 1e3:.1f} | {row['modules']} | "
                f"`{row['first_importer']}` |"
            )
    return "\n".join(lines) + "\n"


def _why_missed(results: dict[str, Any]) -> list[str]:
    """For each missed start-up target: by how much, and where the time goes (measured)."""
    floor = results["summary"]["python -c pass"]["median"]
    lines = []
    for name, kind, limit in _target_rows(results):
        median = results["summary"][name]["median"]
        if median < limit:
            continue
        b = results["breakdown"][kind]
        imports = b["imports"]
        ranked = sorted(imports["packages"].items(), key=lambda kv: -kv[1]["self_us"])[:3]
        top = ", ".join(f"{p} {row['self_us'] / 1e3:.0f} ms" for p, row in ranked)
        libraries = results["summary"].get(LIBRARIES, {}).get("median")
        stack = (
            ""
            if libraries is None
            else f" Importing typer, pydantic, networkx and ruamel.yaml alone takes "
            f"{libraries * 1e3:.0f} ms"
            + (
                f", itself over the {limit} s target: no `{kind}` on this stack can meet it"
                if libraries >= limit
                else f"; {(median - libraries) * 1e3:.0f} ms above that is rocketc's"
            )
            + "."
        )
        lines += [
            "",
            f"**`{name}` misses {limit} s by {(median - limit) * 1e3:.0f} ms.**{stack} Interpreter "
            f"start-up {floor * 1e3:.0f} ms; imports {imports['total_us'] / 1e3:.0f} ms in the "
            f"importtime run of `{b['command']}` (largest: {top}); the rest is rocketc's work"
            + (" and the `ruff format` subprocess" if kind == "compile" else "")
            + ". Only imports a command does not need can be made lazy; see the tables below.",
        ]
    return lines


def _target_rows(results: dict[str, Any]) -> list[tuple[str, str, float]]:
    largest = results["largest_spec"]
    rows = []
    for kind, limit in TARGETS.items():
        name = f"rocketc {kind} {largest}"
        if name in results["summary"]:
            rows.append((name, kind, limit))
    return rows


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, _, limit in _target_rows(results):
        median = results["summary"][name]["median"]
        out.append(
            {
                "target": f"`{name}` < {limit} s end to end",
                "measured": f"{median:.2f} s",
                "met": median < limit,
            }
        )
    return out
