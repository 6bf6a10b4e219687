"""Commands that train: init (a first spec from a table), train, export, ablate, tune."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from rocketc.cli._app import (
    Device,
    SetOption,
    SpecArg,
    ThreadsOption,
    TrackOption,
    _fail,
    _load_with_overrides,
    _use_threads,
    app,
    same_command,
    with_track,
)
from rocketc.errors import RocketcError
from rocketc.files import write_atomic


class Booster(str, Enum):
    """init's --booster: the keys of rocketc.init.render.BOOSTERS (a test keeps them equal)."""

    mlp = "mlp"
    dcn = "dcn"
    deepfm = "deepfm"
    autoint = "autoint"


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
    categorical: Annotated[
        list[str] | None,
        typer.Option("--categorical", help="Make COL categorical (repeat, or COL1,COL2)."),
    ] = None,
    dense: Annotated[
        list[str] | None, typer.Option("--dense", help="Make COL a dense number (repeatable).")
    ] = None,
    ignore: Annotated[
        list[str] | None, typer.Option("--ignore", help="Leave COL out (repeatable).")
    ] = None,
    as_list: Annotated[
        list[str] | None,
        typer.Option("--list", help="Make COL a list of values (repeatable)."),
    ] = None,
    bucket: Annotated[
        list[str] | None,
        typer.Option(
            "--bucket", help="Cut number COL into quantile buckets, an embedded id (repeatable)."
        ),
    ] = None,
    booster: Annotated[
        Booster,
        typer.Option(
            help="What the booster adds beside its deep tower: nothing (mlp), DCN-v2 cross "
            "layers, DeepFM's factorization machine or AutoInt's self-attention over the fields."
        ),
    ] = Booster.mlp,
) -> None:
    """Write a first spec for a table: decide each column (printed with its reason), size the
    vocabularies, embed the fields once for both nets, and add a light tower and a booster.
    --categorical/--dense/--ignore/--list/--bucket override the decision for the columns they
    name."""
    from rocketc.init import init_spec

    overrides = {
        role: [c.strip() for given in names or () for c in given.split(",") if c.strip()]
        for role, names in (
            ("categorical", categorical),
            ("dense", dense),
            ("ignore", ignore),
            ("list", as_list),
            ("bucket", bucket),
        )
    }

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
            overrides=overrides,
            booster=booster.value,
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
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, result.text)
    except (RocketcError, OSError) as exc:
        _fail(exc)
    typer.echo(
        f"wrote {out}: check it with `rocketc check {out}`, train with `rocketc train {out}`"
    )


@app.command()
def train(
    ctx: typer.Context,
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
            "rocketc version changed; --epochs N may extend it).",
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
    threads: ThreadsOption = None,
    track: TrackOption = None,
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
    sets = with_track(list(assignments or []), track)
    device_name = device.value if device is not None else None
    for key, value in (("epochs", epochs), ("seed", seed), ("device", device_name)):
        if value is not None:
            sets.append(f"train.{key}={value}")
    try:
        compiled = _load_with_overrides(spec, sets)
        from rocketc.train import distributed
        from rocketc.train.launcher import launch
        from rocketc.train.run import train_run

        out_dir = out if out is not None else Path("runs") / compiled.spec.name
        if nproc > 1:  # N copies of this command, without --nproc, under torchrun's agent
            argv = same_command(ctx, ("nproc", "master_port"), out=str(out_dir))
            settings = compiled.spec.train
            launch(
                nproc,
                argv,
                batch_size=settings.batch_size,
                device=settings.device,
                port=master_port,
            )
            return
        _use_threads(threads)
        with distributed.joined(compiled.spec.train.device) as world:
            result = train_run(compiled, out_dir, resume=resume, overwrite=overwrite, world=world)
    except (RocketcError, OSError) as exc:
        _fail(exc)
    if world.is_main:
        typer.echo(f"run directory: {result.out_dir}")


@app.command()
def export(
    run_dir: Annotated[
        Path,
        typer.Argument(exists=True, file_okay=False, help="Run directory of `rocketc train`."),
    ],
    int8: Annotated[
        bool,
        typer.Option(
            "--int8",
            help="Quantize light.onnx to light.int8.onnx again; rewrite the report's INT8 "
            "section and preprocess.json.",
        ),
    ] = False,
    spec: Annotated[
        Path | None,
        typer.Option(
            "--spec",
            exists=True,
            dir_okay=False,
            readable=True,
            help="The spec the run was trained with (its data gives the calibration and test "
            "rows).",
            show_default="the embedded quickstart",
        ),
    ] = None,
    assignments: SetOption = None,
) -> None:
    """Export an existing run again without training: --int8 quantizes its light net."""
    if not int8:
        raise typer.BadParameter(
            "say what to export: --int8 (the FP32 light net is exported again by "
            "`rocketc train SPEC -o RUN_DIR --resume`)",
            param_hint="--int8",
        )
    try:
        compiled = _load_with_overrides(spec, list(assignments or []))
        from rich.console import Console

        from rocketc.train.requantize import requantize

        section = requantize(compiled, run_dir, Console(stderr=True, soft_wrap=True))
    except (RocketcError, OSError) as exc:
        _fail(exc)
    served = "light.int8.onnx" if section["default"] == "int8" else "light.onnx"
    typer.echo(f"{run_dir}: INT8 {section['status']}; served by default: {served}")


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
    threads: ThreadsOption = None,
    track: TrackOption = None,
) -> None:
    """The paper's ablation on your spec: light/booster alone, KD, rocket and its variants.

    Each row prints the spec keys it sets, with a warning where that replaces one of your --set.
    """
    try:
        compiled = _load_with_overrides(spec, with_track(list(assignments or []), track))
        from rocketc.experiments.ablate import VARIANTS
        from rocketc.experiments.ablate import ablate as run_ablation

        names = {v.name for v in VARIANTS}
        unknown = sorted(set(only or []) - names)
        if unknown:
            raise RocketcError(f"unknown variant(s) {unknown}; choose from {sorted(names)}")
        out_dir = out if out is not None else Path("runs") / compiled.spec.name / "ablation"
        out_dir.mkdir(parents=True, exist_ok=True)  # a path in the way fails now, not at the end
        from rich.console import Console

        from rocketc.train.budget import check_fits

        check_fits(compiled, compiled.spec.train.batch_size)
        _use_threads(threads)

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
    threads: ThreadsOption = None,
    track: TrackOption = None,
) -> None:
    """Search the loss recipe (Optuna); judge the best against light-alone on the test split."""
    if verdict_seeds == 1:
        raise typer.BadParameter(
            "needs 2 or more paired seeds (or 0)", param_hint="--verdict-seeds"
        )
    sets = list(assignments or []) + ([f"train.epochs={epochs}"] if epochs is not None else [])
    sets = with_track(sets, track)
    try:
        compiled = _load_with_overrides(spec, sets)
        from rich.console import Console

        from rocketc.experiments.tune import TuneOptions
        from rocketc.experiments.tune import tune as run_tune

        out_dir = out if out is not None else Path("runs") / compiled.spec.name / "tune"
        from rocketc.train.budget import check_fits

        check_fits(compiled, compiled.spec.train.batch_size)
        _use_threads(threads)
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
    if result.budget is not None and result.budget.short:
        typer.echo(f"warning: {result.budget.text}")
    typer.echo(f"wrote {', '.join(str(p) for p in result.files)}")
    if result.next_step is not None:
        typer.echo(f"next: {result.next_step}")
