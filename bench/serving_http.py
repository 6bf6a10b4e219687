"""serving_http: `rocketc serve` under load on loopback; light vs booster, 1 and 100 candidates.

For `ctr_movielens` (the paper's online setting; `quickstart` when recbole's MovieLens files are
not installed). Timing does not depend on the weights, so the twins are not trained: a seeded
`RocketNet` gives the light and the booster net, each exported to ONNX the way `rocketc train`
exports (`report.export_onnx`; the light export is verified against PyTorch) and bundled with
the spec's preprocessing fitted on the real train split. Each bundle is served by a real
`rocketc serve` process: one worker, one onnxruntime thread, 127.0.0.1 only, `--stop-after` as a
backstop. A closed-loop client on one keep-alive connection sends real test-split rows (raw
JSON, as a caller would) and reads each answer; the server's `Server-Timing` header splits its
time into JSON parsing, preprocessing and the model, and the rest (response encoding, ASGI,
HTTP, the loopback, the client) is what remains of the client's latency.

The model floor is 2 x MACs x candidates / a single-thread fp32 matmul rate measured in this
run (torch, 512x512x512); "model time" is onnxruntime alone on already-encoded inputs, timed
in this process. Every measurement is bounded by a request count and a time limit, whichever
comes first. Full run: about 2 minutes; `--quick`: under 20 seconds.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._stats import spread

TITLE = "Serving: HTTP latency and throughput of `rocketc serve`"
ORDER = 60
ROOT = Path(__file__).resolve().parent.parent
BATCHES = (1, 100)
NETS = ("light", "booster")
TARGET_MODEL_RATIO = 1.5  # model time for 100 candidates <= 1.5 x the FLOP floor
TARGET_P99_MS = 5.0  # end-to-end p99 for one request of 100 candidates, light net
FULL = {"requests": 2000, "seconds": 20.0, "warmup": 100, "direct_repeats": 500}
QUICK = {"requests": 50, "seconds": 1.0, "warmup": 5, "direct_repeats": 30}


def run(quick: bool) -> dict[str, Any]:
    plan = QUICK if quick else FULL
    name = "ctr_movielens" if importlib.util.find_spec("recbole") else "quickstart"
    servers: dict[str, _Server] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="rocketc-serving-bench-") as tmp:

            def serve(net: str, bundle: Path) -> None:  # starts while the next net exports
                servers[net] = _Server(bundle, plan)

            bundles, model_info, bodies, encoded = _prepare(name, Path(tmp), serve)
            rate = matmul_gflops()
            nets = {}
            for net in NETS:
                info = model_info[net]
                floor = {
                    str(b): 2 * info["macs_per_example"] * b / (rate * 1e9) * 1e3 for b in BATCHES
                }
                nets[net] = {
                    **info,
                    "floor_ms": floor,
                    "direct": _direct(bundles[net], encoded, plan),
                    "http": servers[net].measure(bodies, plan),
                }
                servers.pop(net).stop()
    finally:
        for server in servers.values():
            server.stop()
    return {"spec": name, "plan": plan, "matmul_gflops": rate, "nets": nets}


# --- setup ---------------------------------------------------------------------------------
def _prepare(name: str, tmp: Path, on_bundle):
    """Two bundles (light, booster) of one seeded model, request bodies and encoded batches."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from rocketc.compiler import compile_file
    from rocketc.data import load_data
    from rocketc.serve.bundle import write_bundle
    from rocketc.train.generated import load_generated
    from rocketc.train.report import export_onnx

    compiled = compile_file(ROOT / "specs" / f"{name}.yaml")
    data = load_data(compiled.spec)
    gen = load_generated(compiled, tmp / "code")
    torch.manual_seed(0)
    model = gen.model.RocketNet().eval()
    names = list(data.test.inputs)
    rows = tuple(torch.from_numpy(np.ascontiguousarray(a[:256])) for a in data.test.inputs.values())
    bundles, info = {}, {}
    for net, module in (("light", model.light_net()), ("booster", model.booster_net())):
        module = module.eval()
        (tmp / net).mkdir()
        export_onnx(module, rows, names, tmp / net / "light.onnx", verify=net == "light")
        write_bundle(tmp / net, data.preprocess, compiled.spec)
        counter = FlopCounterMode(display=False)
        with torch.inference_mode(), counter:
            module(*(r[:1] for r in rows))
        info[net] = {
            "params": sum(p.numel() for p in module.parameters()),
            "macs_per_example": counter.get_total_flops() // 2,
        }
        bundles[net] = tmp / net
        on_bundle(net, tmp / net)
    fields = data.preprocess.fields()
    raw = data.test.raw
    n = len(data.test)
    rng = np.random.default_rng(0)
    bodies = {
        b: [_body(raw, fields, rng.choice(n, b, replace=False)) for _ in range(20)] for b in BATCHES
    }
    encoded = {
        b: data.preprocess.encode({k: v[:b] for k, v in raw.items()}).inputs for b in BATCHES
    }
    return bundles, info, bodies, encoded


def _head(raw: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    return {k: v[:n] for k, v in raw.items()}


def _body(raw: dict[str, np.ndarray], fields, rows: np.ndarray) -> bytes:
    """A row-wise JSON request of raw test rows, values as a client would write them."""

    def plain(value):
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, float | np.floating) and value != value:
            return None
        return value.item() if isinstance(value, np.generic) else value

    records = [{f: plain(raw[f][r]) for f in fields} for r in rows]
    return json.dumps({"rows": records}).encode()


def matmul_gflops(size: int = 512, repeats: int = 20) -> float:
    """Single-thread fp32 matmul rate (GFLOP/s), the best of `repeats` (the machine's ceiling)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        for _ in range(3):
            a @ b
        best = min(_timed(lambda: a @ b) for _ in range(repeats))
    finally:
        torch.set_num_threads(threads)
    return 2 * size**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --- measurements --------------------------------------------------------------------------
def _direct(run_dir: Path, encoded: dict, plan: dict) -> dict[str, Any]:
    """onnxruntime alone (one thread) on encoded batches: the model's share, without HTTP."""
    from rocketc.serve.bundle import load_bundle

    bundle = load_bundle(run_dir, threads=1)
    out = {}
    for b in BATCHES:
        inputs = encoded[b]

        def score(inputs=inputs):
            bundle.session.run(None, inputs)

        for _ in range(plan["warmup"]):
            score()
        times = [_timed(score) * 1e3 for _ in range(plan["direct_repeats"])]
        out[str(b)] = {**spread(times), "p99": float(np.percentile(times, 99))}
    return out


class _Server:
    """`rocketc serve` on a free loopback port: one worker, one thread, a --stop-after backstop."""

    def __init__(self, run_dir: Path, plan: dict):
        self.port = _free_port()
        budget = len(BATCHES) * (plan["seconds"] + 30) + 120
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rocketc", "serve", str(run_dir), "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1", "--threads", "1",
             "--stop-after", str(budget)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )  # fmt: skip

    def measure(self, bodies: dict, plan: dict) -> dict[str, Any]:
        _wait_healthy(self.proc, self.port)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            return {str(b): _load(conn, bodies[b], plan) for b in BATCHES}
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful, as in production
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _load(conn: http.client.HTTPConnection, bodies: list[bytes], plan: dict) -> dict[str, Any]:
    """Closed loop on one connection: send, read the whole answer, repeat; bounded both ways."""
    headers = {"Content-Type": "application/json"}
    for k in range(plan["warmup"]):
        _post(conn, bodies[k % len(bodies)], headers)
    latency, parts = [], {"parse": [], "preprocess": [], "model": []}
    started = time.perf_counter()
    deadline = started + plan["seconds"]
    while len(latency) < plan["requests"] and time.perf_counter() < deadline:
        t0 = time.perf_counter()
        timing = _post(conn, bodies[len(latency) % len(bodies)], headers)
        latency.append((time.perf_counter() - t0) * 1e3)
        for name, ms in timing.items():
            parts[name].append(ms)
    elapsed = time.perf_counter() - started
    other = [t - sum(p[k] for p in parts.values()) for k, t in enumerate(latency)]
    candidates = json.loads(bodies[0])["rows"]
    return {
        "requests": len(latency),
        "seconds": elapsed,
        "requests_per_s": len(latency) / elapsed,
        "candidates_per_s": len(latency) * len(candidates) / elapsed,
        "latency_ms": {**spread(latency), "p99": float(np.percentile(latency, 99))},
        "server_ms": {k: spread(v) for k, v in parts.items()},
        "other_ms": spread(other),
        "raw_latency_ms": [round(t, 4) for t in latency],
    }


def _post(conn: http.client.HTTPConnection, body: bytes, headers: dict) -> dict[str, float]:
    conn.request("POST", "/v1/score", body, headers)
    response = conn.getresponse()
    payload = response.read()
    if response.status != 200:
        raise RuntimeError(f"server answered {response.status}: {payload[:300]!r}")
    timing = {}
    for item in response.getheader("Server-Timing", "").split(","):
        name, _, duration = item.strip().partition(";dur=")
        timing[name] = float(duration)
    return timing


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(proc: subprocess.Popen, port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rocketc serve exited early: {proc.stderr.read()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("rocketc serve did not become healthy within a minute")


# --- report --------------------------------------------------------------------------------
def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    light = results["nets"]["light"]
    model = light["direct"]["100"]["median"]
    ratio = model / light["floor_ms"]["100"]
    p99 = light["http"]["100"]["latency_ms"]["p99"]
    return [
        {
            "target": f"light model time, 100 candidates <= {TARGET_MODEL_RATIO}x FLOP floor",
            "measured": f"{ratio:.2f}x ({model:.3f} ms vs {light['floor_ms']['100']:.3f} ms)",
            "met": ratio <= TARGET_MODEL_RATIO,
        },
        {
            "target": f"end-to-end p99, 100 candidates, light, 1 worker <= {TARGET_P99_MS} ms",
            "measured": f"{p99:.2f} ms",
            "met": p99 <= TARGET_P99_MS,
        },
    ]


def render(results: dict[str, Any]) -> str:
    nets, plan = results["nets"], results["plan"]
    lines = [
        f"Spec `{results['spec']}`, untrained seeded weights (timing does not depend on them); "
        f"single-thread matmul rate {results['matmul_gflops']:.1f} GFLOP/s; up to "
        f"{plan['requests']:,} requests or {plan['seconds']:g} s per cell, one keep-alive "
        "connection, one server worker with one onnxruntime thread, client and server on the "
        "same machine.",
        "",
        "**Model time vs the FLOP floor** (onnxruntime alone, encoded inputs, median of "
        f"{plan['direct_repeats']} runs):",
        "",
        "| net | params | MACs / example | candidates | model ms | floor ms | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for net in NETS:
        n = nets[net]
        for b in BATCHES:
            model, floor = n["direct"][str(b)]["median"], n["floor_ms"][str(b)]
            lines.append(
                f"| {net} | {n['params']:,} | {n['macs_per_example']:,} | {b} | {model:.3f} | "
                f"{floor:.4f} | {model / floor:.2f}x |"
            )
    lines += [
        "",
        "**End to end over HTTP** (client latency; the server's share from `Server-Timing`, "
        "medians; other = response encoding, ASGI, HTTP, loopback and the client):",
        "",
        "| net | candidates | p50 ms | p99 ms | requests/s | candidates/s | parse | "
        "preprocess | model | other |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for net in NETS:
        for b in BATCHES:
            h = nets[net]["http"][str(b)]
            s = h["server_ms"]
            lines.append(
                f"| {net} | {b} | {h['latency_ms']['median']:.3f} | {h['latency_ms']['p99']:.3f} "
                f"| {h['requests_per_s']:,.0f} | {h['candidates_per_s']:,.0f} | "
                f"{s['parse']['median']:.3f} | {s['preprocess']['median']:.3f} | "
                f"{s['model']['median']:.3f} | {h['other_ms']['median']:.3f} |"
            )
    return "\n".join(lines) + "\n"
