"""The ASGI application of `rocketc serve` (Starlette): score, health and metadata endpoints.

- `POST /v1/score`: many candidate rows per request (see `requests.py` for the body), answered
  with one probability per row (binary) or class probabilities and the argmax (multiclass),
  and a `Server-Timing` header splitting the server's time into parse / preprocess / model (ms).
- `GET /healthz`: 200 once the bundle is loaded.
- `GET /v1/metadata`: the raw fields a row needs, inputs, label meaning, versions, test metrics,
  and which model is served (`served`: int8 or fp32, its file, the bundle's default).

Errors are JSON `{"error": ..., "problems": [...]}` with 400 (not JSON: invalid UTF-8, nesting
too deep for the parser, a lone surrogate escape such as "\\ud800", which is no character),
413 (body or row count over the limits), 422 (a missing or mistyped field, named with its row,
or a row the model scores NaN) or 500 (a bug: logged on the server, never a traceback in the
response). Every answer is strict JSON: ASCII, and never NaN or Infinity. The model runs
inline on the event loop: one score is a fraction of a millisecond, and a thread hop would cost
about as much; use `--workers` for parallel requests.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from rocketc.serve.bundle import Bundle, Output
from rocketc.serve.requests import Batch, Limits, RequestError, parse_request

log = logging.getLogger("rocketc.serve")


def create_app(bundle: Bundle, limits: Limits | None = None) -> Starlette:
    limits = limits or Limits()
    fields = bundle.preprocess.fields()
    metadata = _metadata(bundle, limits)

    async def score(request: Request) -> Response:
        try:
            started = time.perf_counter()
            payload = _json(await _body(request, limits.max_body_bytes))
            batch = parse_request(payload, fields, limits)
            parsed = time.perf_counter()
            encoded = bundle.preprocess.encode(batch.columns, batch.n)
            batch.check(encoded.problems)  # 422 naming every bad field and row
            encoded_at = time.perf_counter()
            output = bundle.predict(encoded.inputs)
            done = time.perf_counter()
            _check_finite(output, batch)
        except RequestError as exc:
            return _answer(exc.body(), exc.status)
        except ClientDisconnect:  # the client left mid-body: no one to answer, nothing to log
            return _answer({"error": "the client disconnected before sending the body"}, 400)
        except Exception:  # a bug, not the client's: log it here, say nothing about it there
            log.exception("POST /v1/score failed")
            return _answer({"error": "internal server error"}, 500)
        body: dict[str, Any] = {"n": batch.n}
        if output.predicted is None:
            body["scores"] = output.probabilities.tolist()
        else:
            classes = bundle.preprocess.label["classes"]
            body["predicted"] = output.predicted.tolist()
            body["predicted_class"] = [classes[k] for k in body["predicted"]]
            body["probabilities"] = output.probabilities.tolist()
        timing = ", ".join(
            f"{name};dur={1e3 * seconds:.3f}"
            for name, seconds in (
                ("parse", parsed - started),
                ("preprocess", encoded_at - parsed),
                ("model", done - encoded_at),
            )
        )
        return _answer(body, 200, {"Server-Timing": timing})

    async def healthz(request: Request) -> Response:
        return _answer({"status": "ok", "model": bundle.header.get("spec", {}).get("name")}, 200)

    async def meta(request: Request) -> Response:
        return _answer(metadata, 200)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _answer({"error": exc.detail}, exc.status_code)

    async def server_error(request: Request, exc: Exception) -> Response:
        # Starlette re-raises after this answer, so uvicorn logs the traceback server-side.
        return _answer({"error": "internal server error"}, 500)

    return Starlette(
        routes=[
            Route("/v1/score", score, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/v1/metadata", meta, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"body of {int(declared):,} bytes; the limit is {limit:,}")
    chunks, size = [], 0
    async for chunk in request.stream():  # chunked uploads have no content-length
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"body over the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    """Strict JSON: ASCII (a client's text echoed in a message cannot fail to encode) and no
    NaN or Infinity (which are not JSON; `_check_finite` keeps them out of scores)."""
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return Response(text, status_code=status, media_type="application/json", headers=headers)


# A JSON escape of a UTF-16 surrogate; Python's parser turns a lone one into a str that no
# encoder takes (hashing a category, or echoing it in a message, would fail).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _json(body: bytes) -> Any:
    try:
        payload = json.loads(body)
    except RecursionError:
        raise RequestError(400, "the body is not JSON this server reads: nested too deep") from None
    except ValueError as exc:  # UnicodeDecodeError (bytes not UTF-8) is a ValueError too
        raise RequestError(400, f"the body is not JSON: {exc}") from None
    # UTF-16 and UTF-32 bodies (NUL bytes among the first four: JSON starts with ASCII) may
    # carry a lone surrogate unescaped: Python decodes them with "surrogatepass".
    suspect = _SURROGATE_ESCAPE.search(body) or b"\x00" in body[:4]
    if suspect and _has_lone_surrogate(payload):
        raise RequestError(
            400, "the body holds a lone UTF-16 surrogate escape (such as \\ud800): not a character"
        )
    return payload


def _has_lone_surrogate(value: Any) -> bool:
    """Whether any text (key or value) holds a lone surrogate; a valid pair is one character."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _LONE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


_LONE = re.compile("[\ud800-\udfff]")


def _check_finite(output: Output, batch: Batch) -> None:
    """422 naming each row the model scores NaN: finite inputs can still overflow inside the
    net, and NaN is not JSON (nor a score)."""
    finite = np.isfinite(output.probabilities.reshape(batch.n, -1)).all(axis=1)
    if finite.all():
        return
    rows = np.flatnonzero(~finite).tolist()
    raise RequestError(
        422,
        f"{len(rows)} row(s) the model cannot score",
        [
            {
                "at": f"{batch.shape}[{r}]",
                "row": r,
                "message": "the model scores this row NaN: each value is in range, but together "
                "they overflow inside the net; check the row's numbers",
            }
            for r in rows
        ],
    )


def _metadata(bundle: Bundle, limits: Limits) -> dict[str, Any]:
    pre = bundle.preprocess
    inputs = []
    for feature in pre.features:
        item = feature.to_dict()
        if "vocabulary" in item:
            item["vocabulary"] = f"{len(item['vocabulary']):,} values (see preprocess.json)"
        inputs.append(item)
    report = bundle.report or {}
    return {
        **bundle.header,
        "source": pre.source,
        "raw_row": pre.raw_row,
        "fields": {name: f.describe() for name, f in pre.fields().items()},
        "inputs": inputs,
        "label": pre.label,
        "test": _no_nan(report.get("test")),  # a metric undefined on the test split: null
        "int8": _no_nan(_int8_summary(report.get("int8"))),
        "served": bundle.served,
        "limits": {"max_rows": limits.max_rows, "max_body_bytes": limits.max_body_bytes},
        "onnxruntime_threads": bundle.threads,
    }


def _int8_summary(int8: Any) -> Any:
    """report.json's INT8 verdict without its timings: the metric bill and the default."""
    if not isinstance(int8, dict):
        return None
    return {k: int8[k] for k in ("status", "default", "why", "test") if k in int8}


def _no_nan(value: Any) -> Any:
    """`value` with every non-finite number (report.json may hold NaN) as null."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return value
