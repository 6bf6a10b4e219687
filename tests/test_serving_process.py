"""`rocketc serve` as a real uvicorn process on a free loopback port, and no torch when serving.

Every server here listens on 127.0.0.1 only, is started with --stop-after so it ends by itself
even if the test dies, and is killed in `finally` if it outlives its test.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from test_serving import candidate_rows, records, reference_scores

from tests.helpers.serving_runs import trained_run


@pytest.fixture(scope="module")
def ctr_run(tmp_path_factory):
    return trained_run(tmp_path_factory, "ctr")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(run, *args: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rocketc", "serve", str(run), "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, port


def request(port: int, method: str, path: str, body: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, json.dumps(body) if body is not None else None)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def wait_healthy(proc: subprocess.Popen, port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited early:\n{proc.stdout.read()}")
        try:
            if request(port, "GET", "/healthz")[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail("server did not become healthy")


def test_real_server_scores_then_shuts_down_gracefully(ctr_run):
    proc, port = start(ctr_run, "--stop-after", "120", "--threads", "1")
    try:
        wait_healthy(proc, port)
        rows = candidate_rows()
        status, body = request(port, "POST", "/v1/score", {"rows": records(rows)})
        assert status == 200, body
        np.testing.assert_allclose(body["scores"], reference_scores(ctr_run, rows), atol=1e-6)
        status, body = request(port, "POST", "/v1/score", {"rows": [{"user": "x"}]})
        assert status == 422 and "rows[0].user" in [p["at"] for p in body["problems"]]
        proc.send_signal(signal.SIGTERM)
        log = proc.communicate(timeout=30)[0]
    finally:
        proc.kill()
    assert "Shutting down" in log and "Finished server process" in log, log
    assert proc.returncode in (0, -signal.SIGTERM), log  # uvicorn re-raises the signal
    assert "Traceback" not in log


def test_stop_after_ends_the_server_by_itself(ctr_run):
    proc, port = start(ctr_run, "--stop-after", "1")
    try:
        log = proc.communicate(timeout=60)[0]
    finally:
        proc.kill()
    assert proc.returncode == 0, log
    assert f"on http://127.0.0.1:{port}" in log and "Finished server process" in log


def test_several_workers_serve_and_stop_on_sigterm(ctr_run):
    proc, port = start(ctr_run, "--workers", "2", "--stop-after", "120")
    try:
        wait_healthy(proc, port)
        for _ in range(4):  # whichever worker answers, the same scores
            status, body = request(port, "POST", "/v1/score", {"rows": records(candidate_rows())})
            assert status == 200
            np.testing.assert_allclose(
                body["scores"], reference_scores(ctr_run, candidate_rows()), atol=1e-6
            )
        proc.send_signal(signal.SIGTERM)
        log = proc.communicate(timeout=60)[0]
    finally:
        proc.kill()
    assert proc.returncode == 0, log
    assert log.count("Finished server process") == 2 and "Stopping parent process" in log


NO_TORCH = """
import json, sys
from typer.testing import CliRunner
from starlette.testclient import TestClient
from rocketc.cli import app
from rocketc.serve.app import create_app
from rocketc.serve.bundle import load_bundle

run, data, out, body = sys.argv[1:5]
result = CliRunner().invoke(app, ["predict", run, "--data", data, "-o", out])
assert result.exit_code == 0, result.output
client = TestClient(create_app(load_bundle(run)))
response = client.post("/v1/score", content=body)
assert response.status_code == 200, response.text
import rocketc.serve.server  # uvicorn's side too
leaked = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
assert not leaked, leaked[:5]
print("no torch")
"""


def test_predict_and_serve_never_import_torch(ctr_run, tmp_path):
    rows = candidate_rows()
    rows.to_csv(tmp_path / "rows.csv", index=False)
    body = json.dumps({"rows": records(rows.iloc[:5])})
    proc = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(ctr_run), str(tmp_path / "rows.csv"),
         str(tmp_path / "scores.parquet"), body],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("no torch")
