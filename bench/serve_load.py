"""Closed-loop HTTP load on 127.0.0.1: the BentoML service beside a bare FastAPI + uvicorn app.

    python bench/serve_load.py                       # the champion of $MLFLOW_TRACKING_URI
    python bench/serve_load.py --model-dir DIR       # an exported folder (pipelines.serve --export)
    python bench/serve_load.py --duration 5 --clients 1 8 32

Both servers load the same ``Forecaster`` and run the same prediction code (``ServedModel``: the
request checks, the array fast path, the JSON encoder); the bare app answers /forecast with one
forward pass per request (no batching, no middleware). Each level runs ``clients`` connections,
each sending its next request when the previous answer arrives (bounded: one in flight per
client), for ``duration`` seconds. The client is raw asyncio over keep-alive sockets, so it costs
the servers' CPU as little as possible. Reports requests/s and p50/p99 latency; and series/s of
/forecast_batch with 1,000-series bodies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from forecaster.serving.schemas import ForecastRequest

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------ bare app
def bare_app():
    """FastAPI app: POST /forecast -> the same Forecaster, one request per forward pass."""
    import torch
    from fastapi import FastAPI
    from fastapi.responses import Response

    from forecaster.serving import rules, source, writer
    from forecaster.serving.model import ServedModel

    torch.set_num_threads(int(os.environ.get("FORECASTER_TORCH_THREADS", 1)))
    model = ServedModel(*source.load())
    app = FastAPI()

    @app.get("/readyz")
    def readyz():
        return {}

    @app.post("/forecast")
    async def forecast(request: ForecastRequest):  # inline on the event loop: as a plain `def`
        # FastAPI runs it in a thread pool, where 32 clients' threads fight over the GIL
        # (200 req/s, p99 390 ms here), a weaker reference
        errors = []
        horizon = model.check_horizon(request.horizon, errors)
        s = model.check_series(None, request.values, request.last_timestamp, request.covariates,
                               request.future_covariates, horizon, (), errors)
        if errors:
            return Response(json.dumps(rules.RequestError(errors).to_dict()), 400)
        values = model.predict([s])[0]  # the service's array fast path, one series per pass
        body = {**model.render(s, values, horizon), "model": model.model_ref}
        return Response(writer.to_json(body), media_type="application/json")

    return app


# ------------------------------------------------------------------------------ servers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kind: str, env: dict, log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    if kind == "bentoml":
        cmd = [sys.executable, "-m", "bentoml", "serve", "--working-dir", str(ROOT),
               "--host", "127.0.0.1", "--port", str(port)]
    else:
        cmd = [sys.executable, "-m", "uvicorn", "--factory", "bench.serve_load:bare_app",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
               "--no-access-log"]
    full_env = {**os.environ, **env}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [full_env.get("PYTHONPATH"), str(ROOT)]))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} exited:\n{log.read_text()[-3000:]}")
        try:
            status, _ = asyncio.run(_one(port, "GET", "/readyz", b""))
            if status == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.3)
    stop(proc)
    raise TimeoutError(f"{kind} not ready:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ------------------------------------------------------------------------------ client
def _request(method: str, path: str, body: bytes) -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _read_response(reader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(line.split(":", 1)[1]) for line in lines
                  if line.lower().startswith("content-length:"))
    return status, await reader.readexactly(length)


async def _one(port, method, path, body):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_request(method, path, body))
        await writer.drain()
        return await _read_response(reader)
    finally:
        writer.close()


async def _load(port: int, path: str, body: bytes, clients: int, duration: float,
                stagger_s: float = 0.005):
    raw = _request("POST", path, body)
    latencies: list[float] = []
    errors = 0
    connected, go = 0, asyncio.Event()
    window = {}

    async def client(k: int):
        nonlocal errors, connected
        # clients connect one after another (as real ones do), not in the same instant: several
        # server workers share one listening socket and a worker that wakes to find several
        # connections waiting takes them all, while a busy one leaves the next to an idle one.
        # The clock starts once all are connected, so the stagger is not counted.
        await asyncio.sleep(k * stagger_s)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        connected += 1
        if connected == clients:
            window["start"] = time.perf_counter()
            window["stop"] = window["start"] + duration
            go.set()
        await go.wait()
        try:
            while time.perf_counter() < window["stop"]:
                t0 = time.perf_counter()
                writer.write(raw)
                await writer.drain()
                status, _ = await _read_response(reader)
                latencies.append(time.perf_counter() - t0)
                errors += status != 200
        finally:
            writer.close()

    await asyncio.gather(*(client(k) for k in range(clients)))
    elapsed = time.perf_counter() - window["start"]
    lat = np.array(latencies) * 1000
    return {"rps": len(lat) / elapsed, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "n": len(lat), "errors": errors}


# ------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", help="an exported model folder (default: the registry)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per level")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--batch-series", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="BentoML server processes (FORECASTER_WORKERS), one run each")
    parser.add_argument("--json", metavar="PATH", help="also write the rows to PATH")
    args = parser.parse_args()

    env = {}
    tmp = Path(tempfile.mkdtemp(prefix="serve_load_"))
    if args.model_dir:
        env["FORECASTER_MODEL_DIR"] = str(Path(args.model_dir).resolve())
    else:  # export once so both servers read identical files
        subprocess.run([sys.executable, "-m", "pipelines.serve", "--export", str(tmp / "model")],
                       cwd=ROOT, check=True)
        env["FORECASTER_MODEL_DIR"] = str(tmp / "model")
    config = json.loads((Path(env["FORECASTER_MODEL_DIR"]) / "config.json").read_text())
    L = config["spec"]["input_size"]
    rng = np.random.default_rng(0)
    values = (10 + np.sin(np.arange(L) / 4) + 0.1 * rng.normal(size=L)).round(4).tolist()
    single = json.dumps({"values": values}).encode()
    batch = json.dumps({"series": [{"id": str(k), "values": values}
                                   for k in range(args.batch_series)]}).encode()

    rows = []
    for kind, workers in [("bare", 1), *(("bentoml", w) for w in args.workers)]:
        name = kind if kind == "bare" else f"bentoml-{workers}"
        proc, port = start(kind, {**env, "FORECASTER_WORKERS": str(workers)},
                           tmp / f"{name}.log")
        try:
            asyncio.run(_load(port, "/forecast", single, 4, 1.0))  # warm-up
            for c in args.clients:
                r = asyncio.run(_load(port, "/forecast", single, c, args.duration))
                rows.append((name, "/forecast", c, r))
            if kind == "bentoml":
                asyncio.run(_load(port, "/forecast_batch", batch, 1, 1.0))
                for c in (1, 2, 4):
                    r = asyncio.run(_load(port, "/forecast_batch", batch, c, args.duration))
                    r["series_per_s"] = r["rps"] * args.batch_series
                    rows.append((name, f"/forecast_batch ({args.batch_series})", c, r))
        finally:
            stop(proc)

    print(f"\ninput_size={L}, horizon={config['spec']['horizon']}, hidden="
          f"{config['net'].get('hidden_size')}, cpus={os.cpu_count()}, "
          f"{args.duration:g}s per level; bentoml-N: N worker processes")
    print(f"{'server':10} {'endpoint':24} {'clients':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
          f" {'series/s':>10} {'errors':>6}")
    for kind, ep, c, r in rows:
        sps = f"{r['series_per_s']:10.0f}" if "series_per_s" in r else f"{'':10}"
        print(f"{kind:10} {ep:24} {c:7d} {r['rps']:9.1f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f}"
              f" {sps} {r['errors']:6d}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            [{"server": k, "endpoint": ep, "clients": c, **r} for k, ep, c, r in rows], indent=1))
    bare = {c: r["rps"] for k, ep, c, r in rows if k == "bare"}
    for k, ep, c, r in rows:
        if k != "bare" and ep == "/forecast" and c in bare:
            print(f"{k}/bare throughput at {c} clients: {r['rps'] / bare[c]:.2f}x")


if __name__ == "__main__":
    main()
