#!/usr/bin/env python3
"""Cold start of Lambda function binaries, measured locally.

For each binary: start it as Lambda would (AWS_LAMBDA_RUNTIME_API pointing at a minimal Runtime
API served here), hand it one event, and time process start -> its answer to that first
invocation (init + one invocation). Repeats, reports the median and the ratio to the first
binary named, all in the same run.

    benches/cold_start.py --runs 15 --event events/flow-get.json \
        target/release/flow-get target/release/authorizer

The functions need their environment (tables, signing key, ...); point AWS_ENDPOINT_URL at the
emulator (scripts/emulator start) so nothing leaves the machine.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RuntimeApi:
    """Serves one invocation of `event`, then records when the answer arrives."""

    def __init__(self, event: bytes) -> None:
        self.event = event
        self.answered = threading.Event()
        self.answer_at = 0.0
        self.status = ""
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.endswith("/invocation/next"):
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

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length) if length else b""
                api.status = "error" if "/error" in self.path else "ok"
                if api.status == "error":
                    api.status = "error: " + body.decode(errors="replace")[:200]
                api.answer_at = time.perf_counter()
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                api.answered.set()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        host, port = self.server.server_address
        return f"{host}:{port}"


def cold_start(binary: str, event: bytes) -> float:
    api = RuntimeApi(event)
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=api.address, AWS_LAMBDA_FUNCTION_NAME="bench",
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256", AWS_LAMBDA_FUNCTION_VERSION="$LATEST")
    started = time.perf_counter()
    process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not api.answered.wait(30):
            raise RuntimeError(f"{binary}: no answer within 30 s: {process.stderr.read(2000) if process.poll() is not None else ''}")
        if api.status != "ok":
            raise RuntimeError(f"{binary}: {api.status}")
        return (api.answer_at - started) * 1000
    finally:
        process.kill()
        process.wait()
        api.server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--event", action="append", required=True, help="event file per binary (one, or one each)")
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()
    events = args.event * len(args.binaries) if len(args.event) == 1 else args.event
    results = {}
    for binary, event_file in zip(args.binaries, events):
        event = open(event_file, "rb").read()
        cold_start(binary, event)  # warm the page cache: measure process start, not disk
        times = [cold_start(binary, event) for _ in range(args.runs)]
        results[binary] = times
    baseline = statistics.median(results[args.binaries[0]])
    print(f"{'binary':40} {'size MiB':>9} {'median ms':>10} {'min':>7} {'max':>7} {'ratio':>6}")
    for binary, times in results.items():
        size = os.path.getsize(binary) / 2**20
        median = statistics.median(times)
        print(f"{binary:40} {size:9.1f} {median:10.1f} {min(times):7.1f} {max(times):7.1f} {median / baseline:6.2f}")


if __name__ == "__main__":
    main()
