#!/usr/bin/env python3
"""Cold start of Lambda function binaries, measured locally.

For each binary: start it as Lambda would (AWS_LAMBDA_RUNTIME_API pointing at a minimal Runtime
API served here), hand it one event, and time process start -> its answer to that first
invocation (init + one invocation), and process start -> its first request for an event (init
alone: what Lambda reports as Init Duration). Repeats, reports the median and the ratio to the first
binary named, all in the same run.

    benches/cold_start.py --runs 15 --event events/flow-get.json \
        target/release/flow-get target/release/authorizer

The functions need their environment (tables, signing key, ...); point AWS_ENDPOINT_URL at the
emulator (scripts/emulator start) so nothing leaves the machine. benches/run uses this module
for every function, its floor, and the Python and Node versions of flow-get.
"""

import argparse
import os
import statistics
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple


class Start(NamedTuple):
    """One cold start: ms from process start to the answer, and to the first request for an
    event (the end of init), and the answer."""

    ms: float
    init_ms: float
    answer: bytes


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # a killed sandbox resets its connection
        pass


class RuntimeApi:
    """Serves one invocation of `event`, then records when (and what) the answer arrives."""

    def __init__(self, event: bytes) -> None:
        self.event = event
        self.answered = threading.Event()
        self.answer_at = 0.0
        self.ready_at = 0.0
        self.status = ""
        self.body = b""
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path.endswith("/invocation/next"):
                    if not api.ready_at:
                        api.ready_at = time.perf_counter()
                    if api.answered.is_set():
                        time.sleep(30)  # no second event: the process is killed first
                    self.send_response(200)
                    self.send_header("Lambda-Runtime-Aws-Request-Id", "req-1")
                    self.send_header("Lambda-Runtime-Deadline-Ms", str(int((time.time() + 30) * 1000)))
                    self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench")
                    self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(api.event)))
                    self.end_headers()
                    self.wfile.write(api.event)
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length) if length else b""
                if "/init/error" in self.path or "/error" in self.path:
                    api.status = "error: " + body.decode(errors="replace")[:300]
                else:
                    api.status = "ok"
                api.body = body
                api.answer_at = time.perf_counter()
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                api.answered.set()

            def log_message(self, *_: object) -> None:
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        host, port = self.server.server_address
        return f"{host}:{port}"


def invoke(command: list[str] | str, event: bytes, env: dict[str, str] | None = None, timeout: float = 30) -> Start:
    """Starts `command` as a fresh sandbox and hands it `event`."""
    api = RuntimeApi(event)
    command = [command] if isinstance(command, str) else command
    env = dict(env if env is not None else os.environ)
    env.update(AWS_LAMBDA_RUNTIME_API=api.address, AWS_LAMBDA_FUNCTION_NAME="bench",
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256", AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
               AWS_LAMBDA_LOG_STREAM_NAME="bench", AWS_LAMBDA_LOG_GROUP_NAME="bench")
    if "AWS_REGION" in env:  # Lambda sets both
        env.setdefault("AWS_DEFAULT_REGION", env["AWS_REGION"])
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not api.answered.wait(timeout):
            stderr = process.stderr.read(3000).decode(errors="replace") if process.poll() is not None else ""
            raise RuntimeError(f"{command[-1]}: no answer within {timeout} s {stderr}")
        if api.status != "ok":
            raise RuntimeError(f"{command[-1]}: {api.status}")
        return Start((api.answer_at - started) * 1000, (api.ready_at - started) * 1000, api.body)
    finally:
        process.kill()
        process.wait()
        process.stderr.close()
        api.server.shutdown()
        api.server.server_close()


def cold_start(binary: str, event: bytes) -> float:
    return invoke(binary, event).ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--event", action="append", required=True, help="event file per binary (one, or one each)")
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()
    events = args.event * len(args.binaries) if len(args.event) == 1 else args.event
    results: dict[str, list[float]] = {binary: [] for binary in args.binaries}
    loaded = {binary: open(event_file, "rb").read() for binary, event_file in zip(args.binaries, events)}
    for binary, event in loaded.items():
        cold_start(binary, event)  # warm the page cache: measure process start, not disk
    for _ in range(args.runs):  # interleaved: a busy moment hits every binary alike
        for binary, event in loaded.items():
            results[binary].append(cold_start(binary, event))
    baseline = statistics.median(results[args.binaries[0]])
    print(f"{'binary':40} {'size MiB':>9} {'median ms':>10} {'min':>7} {'max':>7} {'ratio':>6}")
    for binary, times in results.items():
        size = os.path.getsize(binary) / 2**20
        median = statistics.median(times)
        print(f"{binary:40} {size:9.1f} {median:10.1f} {min(times):7.1f} {max(times):7.1f} {median / baseline:6.2f}")


if __name__ == "__main__":
    main()
