"""The `rocketc` command line: one thin function per command.

Each command calls the library and formats the result. A `RocketcError` (the user's mistake) is
printed as `file:line:col: message` lines on stderr with exit code 1; usage errors stay click's
(exit 2). `check` and `compile` never import torch, so they answer instantly.
"""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from rocketc.errors import RocketcError, os_error

app = typer.Typer(
    name="rocketc",
    help="Rocket Launching compiler: declare a light net and its booster once, get PyTorch.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SpecArg = Annotated[
    Path,
    typer.Argument(exists=True, dir_okay=False, readable=True, help="Spec YAML file."),
]


def _fail(exc: RocketcError | OSError) -> None:
    if isinstance(exc, OSError):  # a path in the way, no permission, a full disk: the user's
        exc = os_error(exc)
    for diagnostic in exc.diagnostics:
        print(diagnostic, file=sys.stderr)
    count = len(exc.diagnostics)
    if count > 1:
        print(f"{count} errors", file=sys.stderr)
    raise typer.Exit(code=1) from None


@app.command()
def check(
    specs: Annotated[
        list[Path],
        typer.Argument(exists=True, dir_okay=False, readable=True, help="Spec YAML file(s)."),
    ],
) -> None:
    """Validate spec(s): schema, graph, shapes. Prints each net's size; writes nothing."""
    from rocketc.compiler import compile_file

    failed: list[RocketcError] = []
    for path in specs:
        try:
            compiled = compile_file(path)
        except RocketcError as exc:
            failed.append(exc)
            continue
        counts = compiled.param_counts()
        ratio = counts["booster_net"] / max(counts["light_net"], 1)
        typer.echo(
            f"{path}: ok: light net {counts['light_net']:,} parameters, booster "
            f"{counts['booster_net']:,} ({ratio:.1f}x), shared {counts['shared']:,}"
        )
    if failed:
        _fail(RocketcError([d for exc in failed for d in exc.diagnostics]))


@app.command("compile")
def compile_(
    spec: SpecArg,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            file_okay=False,
            help="Output directory.",
            show_default="generated/<name>/",
        ),
    ] = None,
) -> None:
    """Write standalone PyTorch: model.py (RocketNet, LightNet, compute_loss) and train.py."""
    from rocketc.backends.codegen import write
    from rocketc.compiler import compile_file

    try:
        compiled = compile_file(spec)
        out_dir = out if out is not None else Path("generated") / compiled.spec.name
        written = write(compiled, out_dir)
    except (RocketcError, OSError) as exc:
        _fail(exc)
    for path in written:
        typer.echo(f"wrote {path}")


@app.command()
def schema(
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", dir_okay=False, help="Write here instead of stdout."),
    ] = None,
) -> None:
    """Print the JSON Schema of the spec format, for editor completion and linting."""
    from rocketc.compiler.spec import json_schema

    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            _fail(exc)
        typer.echo(f"wrote {out}")


SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a spec value, e.g. --set loss.hint.weight=0.1 (repeatable)."
    ),
]


def _load_with_overrides(spec: Path | None, assignments: list[str]):
    """Compile `spec` (default: the embedded quickstart) after applying --set overrides."""
    from rocketc.compiler import compile_source
    from rocketc.compiler.load import load_file
    from rocketc.compiler.overrides import apply_overrides

    path = spec if spec is not None else embedded_spec("quickstart")
    return compile_source(apply_overrides(load_file(path), assignments))


def embedded_spec(name: str) -> Path:
    """A spec shipped with rocketc (inside the wheel, or specs/ in a source checkout)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "specs" / f"{name}.yaml", here.parent / "specs" / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    raise RocketcError(f"embedded spec '{name}' is missing from this installation")


class Device(str, Enum):
    cpu = "cpu"
    cuda = "cuda"
    auto = "auto"


@app.command()
def train(
    spec: Annotated[
        Path | None,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="Spec YAML file.",
            show_default="the embedded quickstart",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", file_okay=False, help="Run directory.", show_default="runs/<name>/"
        ),
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Override train.epochs.")] = None,
    seed: Annotated[
        int | None, typer.Option(min=0, max=2**63 - 1, help="Override train.seed.")
    ] = None,
    device: Annotated[Device | None, typer.Option(help="Override train.device.")] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the run in the run directory (refused if its spec, seed, data or "
            "rocketc version changed).",
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace the run the run directory holds."),
    ] = False,
    assignments: SetOption = None,
    nproc: Annotated[
        int,
        typer.Option(
            min=1,
            help="Train data-parallel in N processes on this machine (torchrun's launcher; gloo "
            "on CPU, nccl on CUDA); train.batch_size stays the global batch.",
        ),
    ] = 1,
    master_port: Annotated[
        int | None,
        typer.Option(
            min=1, max=65535, help="Rendezvous port for --nproc.", show_default="a free port"
        ),
    ] = None,
) -> None:
    """Co-train light and booster on the spec's data, then export the light net alone.

    Under torchrun (`torchrun --nnodes M --nproc-per-node N -m rocketc train SPEC`) each process
    trains its shard and rank 0 writes the run directory, as with --nproc N on one machine.
    """
    if resume and overwrite:
        raise typer.BadParameter("choose one of --resume and --overwrite", param_hint="--overwrite")
    if nproc > 1 and "WORLD_SIZE" in os.environ:
        raise typer.BadParameter("torchrun started this process already", param_hint="--nproc")
    if master_port is not None and nproc == 1:
        raise typer.BadParameter("goes with --nproc N, N > 1", param_hint="--master-port")
    sets = list(assignments or [])
    device_name = device.value if device is not None else None
    for key, value in (("epochs", epochs), ("seed", seed), ("device", device_name)):
        if value is not None:
            sets.append(f"train.{key}={value}")
    try:
        compiled = _load_with_overrides(spec, sets)
        from rocketc.runtime import distributed
        from rocketc.runtime.launcher import launch
        from rocketc.runtime.train import train_run

        out_dir = out if out is not None else Path("runs") / compiled.spec.name
        if nproc > 1:  # N copies of this command, without --nproc, under torchrun's agent
            argv = ["train", *([str(spec)] if spec else []), "--out", str(out_dir)]
            argv += ["--resume"] * resume + ["--overwrite"] * overwrite
            argv += [arg for s in sets for arg in ("--set", s)]
            settings = compiled.spec.train
            launch(
                nproc,
                argv,
                batch_size=settings.batch_size,
                device=settings.device,
                port=master_port,
            )
            return
        with distributed.joined(compiled.spec.train.device) as world:
            result = train_run(compiled, out_dir, resume=resume, overwrite=overwrite, world=world)
    except (RocketcError, OSError) as exc:
        _fail(exc)
    if world.is_main:
        typer.echo(f"run directory: {result.out_dir}")


@app.command()
def ablate(
    spec: SpecArg,
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per variant.")] = 3,
    epochs: Annotated[int | None, typer.Option(min=1, help="Override train.epochs.")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            file_okay=False,
            help="Where ablation.md/json go.",
            show_default="runs/<name>/ablation/",
        ),
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option("--variant", help="Run only these variants (repeatable).")
    ] = None,
    recipe: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            readable=True,
            help="A spec whose loss section is one more row, 'tuned' (e.g. rocketc tune's "
            "best.yaml).",
        ),
    ] = None,
    assignments: SetOption = None,
) -> None:
    """The paper's ablation on your spec: light/booster alone, KD, rocket and its variants.

    Each row prints the spec keys it sets, with a warning where that replaces one of your --set.
    """
    try:
        compiled = _load_with_overrides(spec, list(assignments or []))
        from rocketc.runtime.ablate import VARIANTS
        from rocketc.runtime.ablate import ablate as run_ablation

        names = {v.name for v in VARIANTS}
        unknown = sorted(set(only or []) - names)
        if unknown:
            raise RocketcError(f"unknown variant(s) {unknown}; choose from {sorted(names)}")
        out_dir = out if out is not None else Path("runs") / compiled.spec.name / "ablation"
        out_dir.mkdir(parents=True, exist_ok=True)  # a path in the way fails now, not at the end
        from rich.console import Console

        from rocketc.runtime.budget import check_fits

        check_fits(compiled, compiled.spec.train.batch_size)

        run_ablation(
            compiled,
            seeds,
            epochs,
            out_dir,
            variants=only,
            console=Console(stderr=True, width=max(160, Console().width)),
            recipe=recipe,
        )
    except (RocketcError, OSError) as exc:
        _fail(exc)
    typer.echo(f"wrote {out_dir / 'ablation.md'}")


def _print_audit(result) -> None:
    """The audit matrix (loss term x parameter group) on stdout, then the verdict."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from rocketc.runtime.audit import GROUPS, explain

    console = Console(highlight=False, soft_wrap=True)  # whole lines: CI logs get grepped
    console.print(f"gradient-flow audit: {result.name}, gradient_block: {result.gradient_block}")
    console.print(
        f"[dim]one train-mode forward pass, batch {result.batch_size}, seed "
        f"{result.seed}; cell: gradient L2 norm[/dim]"
    )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("loss term", no_wrap=True)
    groups = [g for g in GROUPS if result.group_sizes[g]]  # an empty group has nothing to check
    for group in groups:
        table.add_column(f"{group}\n{result.group_sizes[group]:,} params")
    for term in result.terms:
        row = []
        for group in groups:
            cell = result.cell(term, group)
            if cell.expected is None:
                row.append("[dim]-[/dim]")
                continue
            text = f"yes {cell.norm:.1e}" if cell.reached else "no"
            row.append(f"[bold red]{text} ✗ FLAG[/bold red]" if cell.flagged else text)
        table.add_row(term, *row)  # the term's name, as in LOSS_WEIGHTS and the diagram
    console.print(table)
    for cell in result.flagged:
        console.print(f"[bold red]FLAG[/bold red] {explain(cell, result.gradient_block)}")
    for problem in result.problems:
        console.print(f"[bold red]PROBLEM[/bold red] {problem}")
    if result.ok:
        console.print(
            f"ok: each loss term trains exactly the weights gradient_block: "
            f"{result.gradient_block} allows"
        )


def _audit_or_fail(compiled, batch_size: int, seed: int) -> None:
    """Run, print, and exit 1 if any cell contradicts the spec (so CI can gate on it)."""
    from rocketc.runtime.audit import run_audit
    from rocketc.runtime.budget import allocating, check_fits

    try:
        check_fits(compiled, batch_size)
        with allocating(compiled):
            result = run_audit(compiled, batch_size, seed)
    except RocketcError as exc:
        _fail(exc)
    _print_audit(result)
    if not result.ok:
        count = len(result.flagged) + len(result.problems)
        print(
            f"{compiled.file}: gradient-flow audit failed: {count} finding(s) contradict "
            f"gradient_block: {result.gradient_block}",
            file=sys.stderr,
        )
        raise typer.Exit(code=1)


AuditBatch = Annotated[
    int,
    typer.Option(
        min=2, help="Examples in the audit's one forward pass (BatchNorm needs 2 or more)."
    ),
]


@app.command()
def viz(
    spec: SpecArg,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            dir_okay=False,
            help="Output file; .svg, .png, .pdf or .dot by suffix.",
            show_default="<name>.svg",
        ),
    ] = None,
    audit: Annotated[
        bool,
        typer.Option(
            "--audit", help="Also run the gradient-flow audit (imports torch) and print it."
        ),
    ] = False,
    batch_size: AuditBatch = 8,
    assignments: SetOption = None,
) -> None:
    """Draw the sharing diagram: shared/light/booster layers, ties, losses, stop-gradients."""
    from rocketc.backends.viz import render

    try:
        compiled = _load_with_overrides(spec, list(assignments or []))
        path = render(compiled, out if out is not None else Path(f"{compiled.spec.name}.svg"))
    except (RocketcError, OSError) as exc:
        _fail(exc)
    typer.echo(f"wrote {path}")
    if audit:
        _audit_or_fail(compiled, batch_size, compiled.spec.train.seed)


@app.command()
def audit(
    spec: SpecArg,
    batch_size: AuditBatch = 8,
    seed: Annotated[int, typer.Option(help="Seeds the model, inputs and dropout.")] = 0,
    assignments: SetOption = None,
) -> None:
    """Check with autograd which weights each loss term trains, against gradient_block.

    Exit code 1 when a term reaches weights the spec's gradient_block forbids, or misses weights
    it should train.
    """
    try:
        compiled = _load_with_overrides(spec, list(assignments or []))
    except RocketcError as exc:
        _fail(exc)
    _audit_or_fail(compiled, batch_size, seed)


@app.command()
def tune(
    spec: SpecArg,
    trials: Annotated[
        int,
        typer.Option(
            min=1, help="Finished trials the study should hold; a resumed study runs the rest."
        ),
    ] = 30,
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per trial (objective: mean).")] = 2,
    epochs: Annotated[int | None, typer.Option(min=1, help="Override train.epochs.")] = None,
    timeout: Annotated[
        float | None, typer.Option(min=1, help="Start no new trial after this many seconds.")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help="Optuna storage URL; a shared database (postgresql://...) lets several "
            "machines work on one study.",
            show_default="sqlite:///DIR/study.db",
        ),
    ] = None,
    study: Annotated[
        str | None, typer.Option(help="Study name.", show_default="the spec's name")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            file_okay=False,
            help="Output directory.",
            show_default="runs/<name>/tune/",
        ),
    ] = None,
    space: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, readable=True, help="YAML overriding the search space."
        ),
    ] = None,
    verdict_seeds: Annotated[
        int,
        typer.Option(
            min=0, help="Paired seeds for the test verdict (0: none, e.g. on extra workers)."
        ),
    ] = 5,
    assignments: SetOption = None,
) -> None:
    """Search the loss recipe (Optuna); judge the best against light-alone on the test split."""
    if verdict_seeds == 1:
        raise typer.BadParameter(
            "needs 2 or more paired seeds (or 0)", param_hint="--verdict-seeds"
        )
    sets = list(assignments or []) + ([f"train.epochs={epochs}"] if epochs is not None else [])
    try:
        compiled = _load_with_overrides(spec, sets)
        from rich.console import Console

        from rocketc.runtime.tune import TuneOptions
        from rocketc.runtime.tune import tune as run_tune

        out_dir = out if out is not None else Path("runs") / compiled.spec.name / "tune"
        from rocketc.runtime.budget import check_fits

        check_fits(compiled, compiled.spec.train.batch_size)
        options = TuneOptions(
            trials=trials,
            seeds=seeds,
            timeout=timeout,
            storage=storage,
            study=study,
            space=space,
            verdict_seeds=verdict_seeds,
            overrides=sets,
        )
        result = run_tune(compiled, out_dir, options, Console(stderr=True, soft_wrap=True))
    except (RocketcError, OSError) as exc:
        _fail(exc)
    if result.verdict is not None:
        typer.echo(result.verdict.text)
    elif result.best is None:
        typer.echo("no trial completed: nothing to judge")
    typer.echo(f"wrote {', '.join(str(p) for p in result.files)}")


RunDirArg = Annotated[
    Path,
    typer.Argument(
        exists=True, file_okay=False, help="Run directory of `rocketc train` (light.onnx + bundle)."
    ),
]
ThreadsOption = Annotated[
    int, typer.Option("--threads", min=1, help="onnxruntime intra-op threads (per worker).")
]


class OnError(str, Enum):
    fail = "fail"
    skip = "skip"


@app.command()
def predict(
    run_dir: RunDirArg,
    data: Annotated[
        Path,
        typer.Option(
            "--data", exists=True, dir_okay=False, help="Rows to score: .csv or .parquet."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", dir_okay=False, help="Scores: .parquet or .csv."),
    ] = Path("scores.parquet"),
    keep: Annotated[
        list[str] | None,
        typer.Option("--keep", help="Copy this input column into the output (repeatable)."),
    ] = None,
    on_error: Annotated[
        OnError,
        typer.Option(help="fail: list bad rows and write nothing; skip: reject them to a file."),
    ] = OnError.fail,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows read and scored at a time.")] = 65536,
    threads: ThreadsOption = 1,
) -> None:
    """Score a file with the run's light.onnx and preprocessing, in chunks (never imports torch)."""
    from rocketc.runtime.serving.predict import predict_file

    try:
        result = predict_file(
            run_dir,
            data,
            out,
            keep=list(keep or []),
            on_error=on_error.value,
            chunk_rows=chunk_rows,
            threads=threads,
        )
    except RocketcError as exc:
        _fail(exc)
    typer.echo(f"wrote {result.out}: {result.scored:,} of {result.rows:,} rows scored")
    if result.rejects is not None:
        typer.echo(
            f"rejected {result.rejected:,} rows ({result.problems:,} problems): {result.rejects}"
        )


@app.command()
def serve(
    run_dir: RunDirArg,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
    threads: ThreadsOption = 1,
    max_rows: Annotated[int, typer.Option(min=1, help="Most candidate rows per request.")] = 10000,
    max_body_mb: Annotated[float, typer.Option(min=0.001, help="Largest request body.")] = 8.0,
    stop_after: Annotated[
        float | None,
        typer.Option(min=0.1, help="Shut down gracefully after this many seconds."),
    ] = None,
) -> None:
    """Serve the run's light net over HTTP: POST /v1/score, GET /healthz, GET /v1/metadata."""
    from rocketc.runtime.serving.requests import Limits
    from rocketc.runtime.serving.server import ServeOptions
    from rocketc.runtime.serving.server import serve as run_server

    limits = Limits(max_rows=max_rows, max_body_bytes=int(max_body_mb * (1 << 20)))
    options = ServeOptions(str(run_dir), host, port, workers, threads, limits, stop_after)
    try:
        run_server(options)
    except RocketcError as exc:
        _fail(exc)


@app.command()
def init(
    data: Annotated[
        Path,
        typer.Option("--data", exists=True, dir_okay=False, help="The table: .csv or .parquet."),
    ],
    label: Annotated[str, typer.Option("--label", help="The label column (0/1, or class ids).")],
    group: Annotated[
        str | None, typer.Option("--group", help="Column of GAUC groups (e.g. a user id).")
    ] = None,
    weight: Annotated[
        str | None, typer.Option("--weight", help="Column of per-row sample weights.")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Spec name.", show_default="the file's stem")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", dir_okay=False, help="Where to write the spec.")
    ] = Path("spec.yaml"),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the spec instead of writing it.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing -o file.")] = False,
    sample_rows: Annotated[
        int, typer.Option(min=100, help="Rows read to decide each column.")
    ] = 100_000,
    dim: Annotated[int, typer.Option(min=1, help="Embedding width of every field.")] = 16,
    list_delimiter: Annotated[
        str, typer.Option(help="What separates the values of a list held as text.")
    ] = "|",
) -> None:
    """Write a first spec for a table: decide each column (printed with its reason), size the
    vocabularies, embed the fields once for both nets, and add a light tower and a booster."""
    from rocketc.runtime.init import init_spec

    if out.exists() and not (dry_run or force):
        _fail(RocketcError(f"{out}: exists; pass --force to overwrite it, or another -o"))
    try:
        result = init_spec(
            data,
            label,
            group=group,
            weight=weight,
            name=name,
            out=out,
            sample_rows=sample_rows,
            dim=dim,
            delimiter=list_delimiter,
        )
    except RocketcError as exc:
        _fail(exc)
    pad = max(len(c.name) for c in result.columns)
    for c in result.columns:
        role = c.role + (" + group" if c.also else "")
        typer.echo(f"  {c.name.ljust(pad)}  {role.ljust(19)} {c.reason}", err=True)
    if dry_run:
        typer.echo(result.text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(result.text, encoding="utf-8")
    typer.echo(
        f"wrote {out}: check it with `rocketc check {out}`, train with `rocketc train {out}`"
    )


def main() -> None:
    app()
