"""The `rocketc` command line: one thin function per command.

Each command calls the library and formats the result. A `RocketcError` (the user's mistake) is
printed as `file:line:col: message` lines on stderr with exit code 1; usage errors stay click's
(exit 2). `check` and `compile` never import torch, so they answer instantly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from rocketc.errors import RocketcError

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


def _fail(exc: RocketcError) -> None:
    for diagnostic in exc.diagnostics:
        print(diagnostic, file=sys.stderr)
    count = len(exc.diagnostics)
    if count > 1:
        print(f"{count} errors", file=sys.stderr)
    raise typer.Exit(code=1) from None


@app.command()
def check(specs: Annotated[list[Path], typer.Argument(
        exists=True, dir_okay=False, readable=True, help="Spec YAML file(s).")]) -> None:
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
        typer.echo(f"{path}: ok: light net {counts['light_net']:,} parameters, booster "
                   f"{counts['booster_net']:,} ({ratio:.1f}x), shared {counts['shared']:,}")
    if failed:
        _fail(RocketcError([d for exc in failed for d in exc.diagnostics]))


@app.command("compile")
def compile_(
    spec: SpecArg,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", file_okay=False, help="Output directory [default: generated/<name>/].")
    ] = None,
) -> None:
    """Write standalone PyTorch: model.py (RocketNet, LightNet, compute_loss) and train.py."""
    from rocketc.codegen import write
    from rocketc.compiler import compile_file

    try:
        compiled = compile_file(spec)
        out_dir = out if out is not None else Path("generated") / compiled.spec.name
        written = write(compiled, out_dir)
    except RocketcError as exc:
        _fail(exc)
    for path in written:
        typer.echo(f"wrote {path}")


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", dir_okay=False, help="Write here instead of stdout.")] = None,
) -> None:
    """Print the JSON Schema of the spec format, for editor completion and linting."""
    from rocketc.spec import json_schema

    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")


def main() -> None:
    app()
