#!/usr/bin/env python3
"""The local server on its persistent store (the default) against the in-memory one.

1. Throughput and p99 latency of `POST /v1/callbacks` and `GET /v1/callbacks/{id}`, on each
   store: the release binary on loopback, `wrk` as the load generator (one thread, a fixed
   number of keep-alive connections, for a fixed time).
2. Start-up with 100,000 stored callbacks: a data directory is filled through the API (exactly
   that many `POST /v1/callbacks`, each `scheduled` days ahead), then the server is started on it again and again and timed
   from process start until it answers `GET /openapi.yaml` — every timer armed again by then.
   Once more after a `kill -9`, when redb first checks the whole file.

    cargo build --release --bin flowline
    benches/persistent_store.py [--duration 15] [--connections 32] [--callbacks 100000]

Needs wrk (Debian: apt-get install wrk). Nothing leaves the machine; the load generator and the
server share its cores, so the figures are a floor for the server alone.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The release binary on `store` (and `data_dir`), started and read up to "listening on"."""

    def __init__(self, binary: str, store: str, data_dir: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLINE_")}
        port = free_port()
        env.update(
            FLOWLINE_ADDR=f"127.0.0.1:{port}",
            FLOWLINE_STORE=store,
            FLOWLINE_DATA_DIR=data_dir,
            # No request budget in the way of a load test.
            FLOWLINE_RATE_LIMIT="1000000000/1000000000",
            RUST_LOG="warn",
        )
        self.base = f"http://127.0.0.1:{port}"
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines = []
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if "listening on" in line:
                break
        else:
            sys.exit(f"the server did not start: {self.lines} {self.proc.stderr.read()}")
        self.listening = time.perf_counter()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def printed(self, label: str) -> str:
        for line in self.lines:
            if label in line:
                return line.split(label, 1)[1].strip()
        raise KeyError(label)

    def rss_mib(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def call(base: str, key: str, method: str, path: str, body=None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def published_flow(base: str, key: str) -> str:
    flow = call(base, key, "POST", "/v1/flows", {
        "name": "Bench", "data": {"greeting": "Hello"},
        "entry_points": [{"entry_number": "+15550001111", "entry_language": "en-US"}],
    })["slug"]
    call(base, key, "POST", f"/v1/flows/{flow}/publish", {})
    return flow


def lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid Lua string literal here (ASCII only)


def callback_bodies(flow: str) -> list:
    """Callbacks scheduled days ahead (spread over 100 instants), as JSON texts."""
    now = datetime.now(timezone.utc)
    times = [(now + timedelta(days=2, minutes=7 * i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(100)]
    return [json.dumps({"flow": flow, "to_number": "+15557654321", "scheduled_at": t,
                        "reason": "bench", "metadata": {"ticket": "SUP-1"}}) for t in times]


def create_script(key: str, flow: str) -> str:
    """POST /v1/callbacks (wrk runs for a time, not a count)."""
    bodies = callback_bodies(flow)
    return f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = {lua_string("Bearer " + key)}
local bodies = {{{", ".join(lua_string(b) for b in bodies)}}}
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/v1/callbacks", nil, bodies[(n % #bodies) + 1])
end
"""


def fill(base: str, key: str, flow: str, count: int, connections: int) -> None:
    """Exactly `count` callbacks, over `connections` keep-alive connections."""
    bodies = callback_bodies(flow)
    host, port = base.removeprefix("http://").split(":")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    failures = []

    def worker(first: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        for n in range(first, count, connections):
            connection.request("POST", "/v1/callbacks", body=bodies[n % len(bodies)], headers=headers)
            answer = connection.getresponse()
            answer.read()
            if answer.status != 201:
                failures.append(answer.status)
        connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        sys.exit(f"{len(failures)} creations failed: {failures[:10]}")


def get_script(key: str, ids: list) -> str:
    return f"""
wrk.headers["Authorization"] = {lua_string("Bearer " + key)}
local ids = {{{", ".join(lua_string(i) for i in ids)}}}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/v1/callbacks/" .. ids[(n % #ids) + 1])
end
"""


def wrk(base: str, script: str, duration: int, connections: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", path, base],
            capture_output=True, text=True, check=True,
        ).stdout
    finally:
        os.unlink(path)

    def ms(text: str) -> float:
        value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": ms(re.search(r"\s50%\s+(\S+)", out).group(1)),
        "p99_ms": ms(re.search(r"\s99%\s+(\S+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def some_ids(base: str, key: str, count: int) -> list:
    ids, token = [], None
    while len(ids) < count:
        path = "/v1/callbacks?limit=100" + (f"&next_page_token={token}" if token else "")
        page = call(base, key, "GET", path)
        ids += [c["id"] for c in page["callbacks"]]
        token = page.get("next_page_token")
        if not token:
            break
    return ids


def throughput(binary: str, store: str, duration: int, connections: int) -> dict:
    data_dir = tempfile.mkdtemp(prefix=f"flowline-bench-{store}-")
    try:
        server = Server(binary, store, data_dir)
        key = server.printed("private key (writes):")
        flow = published_flow(server.base, key)
        created = wrk(server.base, create_script(key, flow), duration, connections)
        ids = some_ids(server.base, key, 1000)
        got = wrk(server.base, get_script(key, ids), duration, connections)
        server.stop()
        return {"create": created, "get": got}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def wait_until_answering(base: str) -> None:
    while True:
        try:
            with urllib.request.urlopen(base + "/openapi.yaml", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.002)


def startup(binary: str, callbacks: int, runs: int, connections: int) -> dict:
    data_dir = tempfile.mkdtemp(prefix="flowline-bench-startup-")
    try:
        server = Server(binary, "persistent", data_dir)
        key = server.printed("private key (writes):")
        flow = published_flow(server.base, key)
        filled_at = time.perf_counter()
        fill(server.base, key, flow, callbacks, connections)
        fill_seconds = time.perf_counter() - filled_at
        server.stop()

        def start() -> tuple:
            s = Server(binary, "persistent", data_dir)
            wait_until_answering(s.base)
            return s, time.perf_counter() - s.started

        timings, waiting, rss = [], "", 0.0
        for _ in range(runs):
            s, seconds = start()
            timings.append(seconds)
            waiting = next((l for l in s.lines if l.startswith("Waiting: ")), "")
            rss = s.rss_mib()
            s.stop()
        # A crash: the next open checks the whole file before serving.
        s, _ = start()
        s.kill()
        s, after_crash = start()
        s.stop()
        size = sum(os.path.getsize(os.path.join(data_dir, f)) for f in os.listdir(data_dir))
        return {
            "fill_seconds": fill_seconds,
            "waiting_line": waiting,
            "file_mib": size / 2**20,
            "start_seconds_median": statistics.median(timings),
            "start_seconds_all": timings,
            "start_after_kill_9_seconds": after_crash,
            "rss_mib_after_start": rss,
        }
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, "target/release/flowline"))
    parser.add_argument("--duration", type=int, default=15, help="seconds of each wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--callbacks", type=int, default=100_000, help="stored for the start-up runs")
    parser.add_argument("--runs", type=int, default=5, help="timed starts")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-startup", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("needs wrk (Debian: apt-get install wrk)")
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"no {args.binary}: cargo build --release --bin flowline")

    results = {}
    if not args.skip_throughput:
        for store in ("memory", "persistent"):
            results[store] = throughput(args.binary, store, args.duration, args.connections)
            for route, r in results[store].items():
                print(f"{store:>10} {route:>6}: {r['requests_per_s']:8.0f} req/s  p50 {r['p50_ms']:6.2f} ms  "
                      f"p99 {r['p99_ms']:6.2f} ms  ({r['requests']} requests, {r['non_2xx']} not 2xx"
                      f"{', socket errors ' + r['socket_errors'] if r['socket_errors'] else ''})", flush=True)
    if not args.skip_startup:
        results["startup"] = startup(args.binary, args.callbacks, args.runs, args.connections)
        s = results["startup"]
        print(f"start-up with {args.callbacks} callbacks: median {s['start_seconds_median'] * 1000:.0f} ms "
              f"(runs: {', '.join(f'{t * 1000:.0f}' for t in s['start_seconds_all'])} ms); "
              f"after kill -9: {s['start_after_kill_9_seconds'] * 1000:.0f} ms; "
              f"file {s['file_mib']:.0f} MiB; RSS {s['rss_mib_after_start']:.0f} MiB; "
              f"filled in {s['fill_seconds']:.0f} s; \"{s['waiting_line']}\"", flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
