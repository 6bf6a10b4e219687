"""Commands that serve the exported light net: predict (files), serve (HTTP)."""

from __future__ import annotations

import codecs
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from rocketc.cli._app import (
    _fail,
    app,
)
from rocketc.errors import RocketcError

RunDirArg = Annotated[
    Path,
    typer.Argument(
        exists=True, file_okay=False, help="Run directory of `rocketc train` (light.onnx + bundle)."
    ),
]


ThreadsOption = Annotated[
    int, typer.Option("--threads", min=1, help="onnxruntime intra-op threads (per worker).")
]


class ServedModel(str, Enum):
    int8 = "int8"
    fp32 = "fp32"


ModelOption = Annotated[
    ServedModel | None,
    typer.Option(
        "--model",
        help="Which light net to run: int8 (light.int8.onnx) or fp32 (light.onnx).",
        show_default="int8 when it passed the export's bar, else fp32",
    ),
]


def _model(value: ServedModel | None) -> str | None:
    return value.value if value is not None else None


class OnError(str, Enum):
    fail = "fail"
    skip = "skip"


def _known_encoding(value: str) -> str:
    try:
        return codecs.lookup(value).name
    except LookupError:
        raise typer.BadParameter(f"{value!r} is not a text encoding Python knows") from None


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
    chunk_rows: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Rows read and scored at a time (default: as many as fit in about 256 MB).",
            show_default=False,
        ),
    ] = None,
    threads: ThreadsOption = 1,
    encoding: Annotated[
        str,
        typer.Option(
            callback=_known_encoding,
            help="Text encoding of a CSV file (e.g. latin-1, cp1252); Parquet text is UTF-8.",
        ),
    ] = "utf-8",
    model: ModelOption = None,
) -> None:
    """Score a file with the run's light.onnx and preprocessing, in chunks (never imports torch)."""
    from rocketc.serve.predict import RowsError, plural, predict_file

    try:
        result = predict_file(
            run_dir,
            data,
            out,
            keep=list(keep or []),
            on_error=on_error.value,
            chunk_rows=chunk_rows,
            threads=threads,
            encoding=encoding,
            model=_model(model),
        )
    except RowsError as exc:  # its last line counts the problems: no "N errors" after it
        for diagnostic in [*exc.diagnostics, exc.summary]:
            print(diagnostic, file=sys.stderr)
        raise typer.Exit(code=1) from None
    except RocketcError as exc:
        _fail(exc)
    typer.echo(
        f"wrote {result.out}: {result.scored:,} of {plural(result.rows, 'row')} scored "
        f"by {result.model}"
    )
    if result.rejects is not None:
        typer.echo(
            f"rejected {plural(result.rejected, 'row')} "
            f"({plural(result.problems, 'problem')}): {result.rejects}"
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
    model: ModelOption = None,
) -> None:
    """Serve the run's light net over HTTP: POST /v1/score, GET /healthz, GET /v1/metadata."""
    from rocketc.serve.requests import Limits
    from rocketc.serve.server import AddressError, ServeOptions
    from rocketc.serve.server import serve as run_server

    limits = Limits(max_rows=max_rows, max_body_bytes=int(max_body_mb * (1 << 20)))
    options = ServeOptions(
        str(run_dir), host, port, workers, threads, limits, stop_after, model=_model(model)
    )
    try:
        run_server(options)
    except AddressError as exc:  # a usage error, like any other bad option value (exit 2)
        raise typer.BadParameter(exc.diagnostics[0].message, param_hint=exc.option) from None
    except RocketcError as exc:
        _fail(exc)
