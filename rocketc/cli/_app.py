"""What every command shares: the typer app, argument types, error printing, spec loading."""

from __future__ import annotations

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


class Track(str, Enum):
    none = "none"
    tensorboard = "tensorboard"
    mlflow = "mlflow"


TrackOption = Annotated[
    Track | None,
    typer.Option(
        "--track",
        help="Log to tensorboard or mlflow (sets train.track; needs the track extra of rocketc).",
        show_default="the spec's train.track (none)",
    ),
]


def with_track(sets: list[str], track: Track | None) -> list[str]:
    """`--track X` is `--set train.track=X`."""
    return sets + ([f"train.track={track.value}"] if track is not None else [])


ThreadsOption = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        help="torch's compute threads; by default half the cores (OMP_NUM_THREADS wins), so a "
        "busy machine is not oversubscribed.",
        show_default="half the cores",
    ),
]


def _use_threads(threads: int | None) -> None:
    from rocketc.train.threads import use

    use(threads)


SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a spec value, e.g. --set loss.hint.weight=0.1 (repeatable)."
    ),
]


def _load_with_overrides(spec: Path | None, assignments: list[str]):
    """Compile `spec` (default: the embedded quickstart) after applying --set overrides."""
    from rocketc.compiler import compile_file, embedded_spec

    return compile_file(spec if spec is not None else embedded_spec("quickstart"), assignments)


class Device(str, Enum):
    cpu = "cpu"
    cuda = "cuda"
    auto = "auto"


def same_command(ctx: typer.Context, drop: tuple[str, ...], **replace: str) -> list[str]:
    """This command's own argv, rebuilt from every parameter it parsed (so none can be dropped
    when it is started again, e.g. in N processes by `--nproc`), less the `drop`ped ones and
    with `replace`d values. Parameters left at their default are left out."""
    argv = [ctx.info_name or ""]
    for param in ctx.command.params:
        name = param.name or ""
        value = replace.get(name, ctx.params.get(name))
        if name in drop or value is None or (value == param.default and name not in replace):
            continue
        values = list(value) if param.multiple else [value]
        texts = [str(v.value if isinstance(v, Enum) else v) for v in values]
        if param.param_type_name == "argument":
            argv += texts
        elif getattr(param, "is_flag", False):
            argv += [param.opts[0]] if value else []
        else:
            argv += [arg for text in texts for arg in (param.opts[0], text)]
    return argv
