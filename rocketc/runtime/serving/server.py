"""`rocketc serve`: the app of `app.py` under uvicorn, with graceful shutdown.

The bundle is checked once in this process before uvicorn starts (a bad run directory is a
plain error, not a crashed worker), then each worker process loads its own copy through
`app_from_env`, the factory uvicorn imports; the options travel in an environment variable,
which is how uvicorn's `--workers` processes can receive them. SIGINT/SIGTERM (or `stop_after`)
stop accepting connections, let requests in flight finish (up to GRACE seconds), then exit.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rocketc.runtime.serving.app import create_app
from rocketc.runtime.serving.bundle import load_bundle
from rocketc.runtime.serving.requests import Limits

ENV = "ROCKETC_SERVE_OPTIONS"
GRACE = 10  # seconds in-flight requests get to finish on shutdown


@dataclass
class ServeOptions:
    run_dir: str
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    threads: int = 1  # onnxruntime intra-op threads per worker
    limits: Limits = field(default_factory=Limits)
    stop_after: float | None = None  # seconds; then shut down as on SIGTERM (tests, benchmarks)
    log_level: str = "info"


def app_from_env():
    """The ASGI app of one worker, from the options `serve` put in the environment."""
    raw = json.loads(os.environ[ENV])
    options = ServeOptions(**{**raw, "limits": Limits(**raw["limits"])})
    return create_app(load_bundle(options.run_dir, options.threads), options.limits)


def serve(options: ServeOptions) -> None:
    """Run until SIGINT/SIGTERM or `stop_after`; raises BundleError before starting if unfit."""
    import uvicorn

    bundle = load_bundle(options.run_dir, options.threads)
    os.environ[ENV] = json.dumps(asdict(options))
    spec = bundle.header.get("spec", {}).get("name", "?")
    print(
        f"serving {spec} from {Path(options.run_dir)} on http://{options.host}:{options.port} "
        f"({options.workers} worker(s), {options.threads} onnxruntime thread(s) each): "
        "POST /v1/score, GET /v1/metadata, GET /healthz",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(
        "rocketc.runtime.serving.server:app_from_env",
        factory=True,
        host=options.host,
        port=options.port,
        workers=options.workers,
        log_level=options.log_level,
        access_log=False,  # a log line per request costs more than scoring 100 candidates
        timeout_graceful_shutdown=GRACE,
        server_header=False,
    )
    if options.workers > 1:  # uvicorn's supervisor: it stops its workers on SIGTERM
        _stop_after(options.stop_after, lambda: os.kill(os.getpid(), signal.SIGTERM))
        uvicorn.run(
            config.app,
            factory=True,
            host=options.host,
            port=options.port,
            workers=options.workers,
            log_level=options.log_level,
            access_log=False,
            timeout_graceful_shutdown=GRACE,
            server_header=False,
        )
        return
    server = uvicorn.Server(config)
    _stop_after(options.stop_after, lambda: setattr(server, "should_exit", True))
    server.run()
    if not server.started:  # e.g. the port is taken; uvicorn has logged why
        raise SystemExit(1)


def _stop_after(seconds: float | None, stop) -> None:
    if seconds is not None:
        timer = threading.Timer(seconds, stop)
        timer.daemon = True
        timer.start()
