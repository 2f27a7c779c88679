"""The Python side of scripts/fuzz-api.

    python scripts/fuzz_api.py receive PORT          a webhook receiver on 127.0.0.1:PORT
    python scripts/fuzz_api.py seed BASE KEY URL OUT  makes resources on the server at BASE and
                                                      writes a schemathesis config to OUT that
                                                      feeds their ids to the fuzzer
    SCHEMATHESIS_HOOKS=scripts/fuzz_api.py            the schemathesis hook below

The fuzzed server runs with FLOWLINE_ALLOW_PRIVATE_TARGETS=1, so it would deliver events to
whatever URL the fuzzer registers: the hook replaces every webhook URL sent with the receiver's
(FUZZ_RECEIVER_URL), so every delivery stays on this machine. The receiver accepts each delivery
and answers a session id, so dispatches end `dispatched`.

Random ids only ever find nothing (404); the seeded resources (a published flow with a draft,
a draft flow, scheduled and dispatched callbacks, a webhook endpoint, a trigger URL when the
server has them) let most generated requests reach the routes' logic.
"""

import datetime
import http.server
import json
import os
import sys
import urllib.error
import urllib.request


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.dumps({"session_id": "sess_fuzz"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def receive(port):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Receiver)
    server.daemon_threads = True
    server.serve_forever()


def call(base, key, method, path, body=None):
    """(status, parsed JSON or None) of one request."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("authorization", f"Bearer {key}")
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=40) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


def created(base, key, path, body):
    status, answer = call(base, key, "POST", path, body)
    if status not in (200, 201):
        raise SystemExit(f"seeding: POST {path} answered {status}")
    return answer


def toml_list(values):
    return "[" + ", ".join(json.dumps(str(v)) for v in values) + "]"


def seed(base, key, receiver_url, out):
    soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=7)
    soon = soon.strftime("%Y-%m-%dT%H:%M:%SZ")
    webhook = created(
        base,
        key,
        "/v1/webhooks",
        {
            "url": receiver_url,
            "events": [
                "callback.dispatch",
                "callback.scheduled",
                "callback.dispatched",
                "callback.failed",
                "callback.cancelled",
                "flow.published",
            ],
        },
    )
    flow = {
        "name": "Fuzz renewals",
        "data": {"greeting": "Hello", "steps": [{"say": "greeting"}]},
        "entry_points": [{"entry_number": "+15557654321", "entry_language": "en-US"}],
    }
    published = created(base, key, "/v1/flows", flow)
    created(base, key, f"/v1/flows/{published['slug']}/publish", {})
    draft = created(base, key, f"/v1/flows/{published['slug']}/versions", {})
    other = created(base, key, "/v1/flows", {"name": "Fuzz draft", "data": "a: 1\n"})
    slug = published["slug"]
    callbacks = [
        created(base, key, "/v1/callbacks", {"flow": slug, "to_number": "+15551234567", "scheduled_at": soon})["id"]
        for _ in range(3)
    ]
    callbacks.append(created(base, key, "/v1/callbacks", {"flow": slug, "to_number": "+15551234567"})["id"])
    flows = [slug, other["slug"], str(published["id"]), str(draft["id"])]

    dictionaries = {
        "flows": flows,
        "callbacks": callbacks,
        "webhooks": [webhook["id"]],
    }
    operations = [
        ("^/v1/callbacks/", {"path.id": "callbacks"}),
        ("^/v1/webhooks/", {"path.id": "webhooks"}),
    ]
    # Trigger URLs, where the server has them.
    status, trigger = call(base, key, "POST", f"/v1/flows/{slug}/callbacks", {})
    if status == 201 and isinstance(trigger, dict):
        signature = trigger["url"].split("signature=", 1)[1]
        dictionaries["flow_callbacks"] = [trigger["id"]]
        dictionaries["signatures"] = [urllib.request.unquote(signature)]
        operations.append(("^/v1/flows/\\{flow\\}/callbacks/", {"path.callback": "flow_callbacks"}))
        operations.append(("^/v1/hooks/", {"path.id": "flow_callbacks", "query.signature": "signatures"}))

    lines = []
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {toml_list(values)}", ""]
    lines += [
        "[parameters]",
        '"path.flow" = { dictionary = "flows", probability = 0.8 }',
        '"body.flow" = { dictionary = "flows", probability = 0.8 }',
        "",
    ]
    for regex, bindings in operations:
        lines += ["[[operations]]", f"include-path-regex = {json.dumps(regex)}", "[operations.parameters]"]
        lines += [f'"{k}" = {{ dictionary = "{v}", probability = 0.8 }}' for k, v in bindings.items()]
        lines.append("")
    with open(out, "w") as config:
        config.write("\n".join(lines))


if __name__ == "__main__":
    command, *arguments = sys.argv[1:] or [""]
    if command == "receive":
        receive(*arguments)
    elif command == "seed":
        seed(*arguments)
    else:
        raise SystemExit(__doc__)
else:
    import schemathesis

    RECEIVER_URL = os.environ["FUZZ_RECEIVER_URL"]

    @schemathesis.hook
    def before_call(context, case, **kwargs):
        if (
            case.path.startswith("/v1/webhooks")
            and isinstance(case.body, dict)
            and isinstance(case.body.get("url"), str)
        ):
            case.body["url"] = RECEIVER_URL
