"""Commands over the compiler and back ends (never torch, except the audit): check, compile,
schema, viz, audit."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from rocketc.cli._app import (
    SetOption,
    SpecArg,
    _fail,
    _load_with_overrides,
    app,
)
from rocketc.errors import RocketcError
from rocketc.files import write_atomic


@app.command()
def check(
    specs: Annotated[
        list[Path],
        typer.Argument(exists=True, dir_okay=False, readable=True, help="Spec YAML file(s)."),
    ],
) -> None:
    """Validate spec(s): schema, graph, shapes, and that training fits in this machine's
    memory. Prints each net's size; writes nothing."""
    from rocketc.compiler import compile_file
    from rocketc.train.budget import check_fits  # no torch: the estimate is the graph's

    failed: list[RocketcError] = []
    for path in specs:
        try:
            compiled = compile_file(path)
            # The same limit as `train`: a model no memory here could hold is refused now.
            check_fits(compiled, compiled.spec.train.batch_size)
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
            write_atomic(out, text)
        except RocketcError as exc:
            _fail(exc)
        typer.echo(f"wrote {out}")


def _print_audit(result) -> None:
    """The audit matrix (loss term x parameter group) on stdout, then the verdict."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from rocketc.train.audit import GROUPS, explain

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
    from rocketc.train.audit import run_audit
    from rocketc.train.budget import allocating, check_fits

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
