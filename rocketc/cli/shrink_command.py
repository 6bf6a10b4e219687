"""`rocketc shrink`: how much cheaper can the served light net be at unchanged quality?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rocketc.cli._app import (
    SetOption,
    SpecArg,
    ThreadsOption,
    _fail,
    _load_with_overrides,
    _use_threads,
    app,
)
from rocketc.errors import RocketcError

DEFAULT_FACTORS = (1.0, 0.5, 0.25, 0.125, 0.0625)


def _numbers(text: str | None, kind, option: str) -> list:
    if text is None:
        return []
    try:
        return [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"a comma-separated list of numbers, got {text!r}", param_hint=option
        ) from None


@app.command()
def shrink(
    spec: SpecArg,
    factors: Annotated[
        str | None,
        typer.Option(
            help="Served-MAC factors to derive by scaling the light layers' widths, e.g. "
            "1,0.5,0.25 (each in (0, 1]). Default: 1,0.5,0.25,0.125,0.0625, skipping those the "
            "shared layers' cost puts out of reach.",
        ),
    ] = None,
    depths: Annotated[
        str | None,
        typer.Option(help="Also cut the light tower to these numbers of hidden stages, e.g. 0,1."),
    ] = None,
    light: Annotated[
        list[Path] | None,
        typer.Option(
            "--light",
            exists=True,
            dir_okay=False,
            readable=True,
            help="Your own candidate: a YAML with layers: replacing the light layers (and an "
            "optional head:). Repeatable.",
        ),
    ] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Paired seeds per size and arm.")] = 3,
    epochs: Annotated[int | None, typer.Option(min=1, help="Override train.epochs.")] = None,
    recipe: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            readable=True,
            help="Train the rocket arm with this spec's loss section (e.g. tune's best.yaml) "
            "instead of the spec's own.",
        ),
    ] = None,
    tolerance: Annotated[
        float,
        typer.Option(
            min=0, help="Unchanged quality: within this many points (×100) of the metric."
        ),
    ] = 0.1,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            file_okay=False,
            help="Where shrink.md/json, frontier.png, shrunk.yaml and the derived specs go; "
            "rerun with the same -o to continue a killed shrink.",
            show_default="runs/<name>/shrink/",
        ),
    ] = None,
    assignments: SetOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Derive cheaper light nets and train each alone, with KD and with rocket: how much
    cheaper can the served net be at unchanged quality?"""
    asked = _numbers(factors, float, "--factors")
    cuts = _numbers(depths, int, "--depths")
    for f in asked:
        if not 0 < f <= 1:
            raise typer.BadParameter(
                f"each factor must be in (0, 1], got {f:g}", param_hint="--factors"
            )
    for d in cuts:
        if d < 0:
            raise typer.BadParameter(f"a depth is 0 or more, got {d}", param_hint="--depths")
    try:
        sets = list(assignments or [])
        compiled = _load_with_overrides(spec, sets)
        from rich.console import Console

        from rocketc.compiler.load import load_file
        from rocketc.compiler.sizes import derive_all, reachable
        from rocketc.experiments.shrink import ShrinkOptions
        from rocketc.experiments.shrink import shrink as run_shrink
        from rocketc.experiments.variants import tuned_variant
        from rocketc.train.budget import check_fits

        console = Console(stderr=True, soft_wrap=True)
        if factors is None:
            asked, skipped = reachable(compiled, list(DEFAULT_FACTORS))
            for line in skipped:
                console.print(f"[yellow]skipped[/]: {line}", highlight=False)
        fragments = [(path.stem, load_file(path)) for path in light or []]
        sizes = derive_all(compiled, asked, cuts, fragments)
        if len(sizes) < 2:
            raise RocketcError(
                f"{compiled.file}: no smaller light net to compare: give --factors, --depths "
                "or --light"
            )
        for size in sizes:
            check_fits(size.compiled, compiled.spec.train.batch_size)
        out_dir = out if out is not None else Path("runs") / compiled.spec.name / "shrink"
        out_dir.mkdir(parents=True, exist_ok=True)
        _use_threads(threads)
        options = ShrinkOptions(
            seeds=seeds,
            epochs=epochs,
            tolerance=tolerance,
            recipe=tuned_variant(recipe) if recipe is not None else None,
            recipe_file=str(recipe) if recipe is not None else None,
            overrides=sets,
        )
        result = run_shrink(compiled, sizes, out_dir, options, console)
    except (RocketcError, OSError) as exc:
        _fail(exc)
    for line in result["answer"]:
        typer.echo(line)
    typer.echo(
        f"wrote {out_dir / 'shrink.md'}, {out_dir / 'frontier.png'}, {out_dir / 'shrunk.yaml'}"
    )
    typer.echo(f"next: rocketc train {out_dir / 'shrunk.yaml'}")
