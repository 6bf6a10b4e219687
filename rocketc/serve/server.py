"""`rocketc serve`: the app of `app.py` under uvicorn, with graceful shutdown.

The bundle is checked once in this process before uvicorn starts (a bad run directory is a
plain error, not a crashed worker), and so is the address: `check_address` binds it and lets it
go, so a port already taken is a usage error before "serving ..." is printed, not uvicorn's
log and exit 3 after it. Then each worker process loads its own copy through
`app_from_env`, the factory uvicorn imports; the options travel in an environment variable,
which is how uvicorn's `--workers` processes can receive them. SIGINT/SIGTERM (or `stop_after`)
stop accepting connections, let requests in flight finish (up to GRACE seconds), then exit.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import sys
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rocketc.errors import RocketcError
from rocketc.serve.app import create_app
from rocketc.serve.bundle import load_bundle
from rocketc.serve.requests import Limits

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
    model: str | None = None  # "int8" | "fp32"; None: the bundle's default


class AddressError(RocketcError):
    """The server cannot listen where asked: the port is taken, privileged, or the host is not
    this machine's. `option` names the command-line option to change (`--port` or `--host`)."""

    def __init__(self, message: str, option: str):
        super().__init__(message)
        self.option = option


def check_address(host: str, port: int) -> None:
    """Bind `host:port` as uvicorn will (same family, SO_REUSEADDR) and release it at once;
    AddressError when that fails. Another process may still take the port in between: uvicorn
    then reports it, as before."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # uvicorn's choice
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except socket.gaierror as exc:
        raise AddressError(f"cannot listen on host {host!r}: {exc.strerror}", "--host") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise AddressError(
                f"{host}:{port} is in use by another process; choose another port",
                "--port",
            ) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise AddressError(
                f"no permission to listen on {host}:{port} (ports below 1024 need privileges); "
                "choose a port from 1024 up",
                "--port",
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise AddressError(
                f"{host} is not an address of this machine; use 127.0.0.1 (this machine only) "
                "or 0.0.0.0 (every interface)",
                "--host",
            ) from None
        raise AddressError(f"cannot listen on {host}:{port}: {exc.strerror}", "--port") from None


def app_from_env():
    """The ASGI app of one worker, from the options `serve` put in the environment."""
    raw = json.loads(os.environ[ENV])
    options = ServeOptions(**{**raw, "limits": Limits(**raw["limits"])})
    bundle = load_bundle(options.run_dir, options.threads, options.model)
    return create_app(bundle, options.limits)


def serve(options: ServeOptions) -> None:
    """Run until SIGINT/SIGTERM or `stop_after`; raises BundleError (an unfit run directory) or
    AddressError (a taken port, an unknown host) before starting."""
    import uvicorn

    bundle = load_bundle(options.run_dir, options.threads, options.model)
    check_address(options.host, options.port)
    os.environ[ENV] = json.dumps(asdict(options))
    spec = bundle.header.get("spec", {}).get("name", "?")
    served = bundle.served or {}
    print(
        f"serving {spec} ({served.get('file')}, {served.get('model', '?').upper()}: "
        f"{served.get('chosen_by')}) from {Path(options.run_dir)} on "
        f"http://{options.host}:{options.port} "
        f"({options.workers} worker(s), {options.threads} onnxruntime thread(s) each): "
        "POST /v1/score, GET /v1/metadata, GET /healthz",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(
        "rocketc.serve.server:app_from_env",
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
