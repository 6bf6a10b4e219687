"""The ASGI application of `rocketc serve` (Starlette): score, health and metadata endpoints.

- `POST /v1/score`: many candidate rows per request (see `requests.py` for the body), answered
  with one probability per row (binary) or class probabilities and the argmax (multiclass),
  and a `Server-Timing` header splitting the server's time into parse / preprocess / model (ms).
- `GET /healthz`: 200 once the bundle is loaded.
- `GET /v1/metadata`: the raw fields a row needs, inputs, label meaning, versions, test metrics.

Errors are JSON `{"error": ..., "problems": [...]}` with 400 (not JSON), 413 (body or row count
over the limits), 422 (a missing or mistyped field, named with its row) or 500 (a bug: logged
on the server, never a traceback in the response). The model runs inline on the event loop: one
score is a fraction of a millisecond, and a thread hop would cost about as much; use
`--workers` for parallel requests.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rocketc.serve.bundle import Bundle
from rocketc.serve.requests import Limits, RequestError, parse_request

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
        except RequestError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        except Exception:  # a bug, not the client's: log it here, say nothing about it there
            log.exception("POST /v1/score failed")
            return JSONResponse({"error": "internal server error"}, status_code=500)
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
        return Response(
            json.dumps(body, separators=(",", ":")),
            media_type="application/json",
            headers={"Server-Timing": timing},
        )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": bundle.header.get("spec", {}).get("name")})

    async def meta(request: Request) -> Response:
        return JSONResponse(metadata)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    async def server_error(request: Request, exc: Exception) -> Response:
        # Starlette re-raises after this answer, so uvicorn logs the traceback server-side.
        return JSONResponse({"error": "internal server error"}, status_code=500)

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


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"the body is not JSON: {exc}") from None


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
        "test": report.get("test"),
        "limits": {"max_rows": limits.max_rows, "max_body_bytes": limits.max_body_bytes},
        "onnxruntime_threads": bundle.threads,
    }
