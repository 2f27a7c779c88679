"""The Python side of scripts/fuzz-api.

    python scripts/fuzz_api.py receive PORT                a webhook receiver on 127.0.0.1:PORT
    python scripts/fuzz_api.py seed BASE KEY OTHER URL OUT  makes resources on the server at BASE
                                                            and writes a schemathesis config to
                                                            OUT (and next to it the identities and
                                                            the seeded trigger URLs' signatures)
    SCHEMATHESIS_HOOKS=scripts/fuzz_api.py                  the schemathesis hooks below

The fuzzed server runs with FLOWLINE_ALLOW_PRIVATE_TARGETS=1, so it would deliver events to
whatever URL the fuzzer registers: the hook replaces every webhook URL sent with the receiver's
(FUZZ_RECEIVER_URL), so every delivery stays on this machine. The receiver accepts each delivery
and answers a session id, so dispatches end `dispatched`.

Random ids only ever find nothing (404); the seeded resources (a published flow with a draft,
a draft flow, scheduled and dispatched callbacks, a webhook endpoint and the deliveries of their
events to it, a trigger URL, and one trigger URL per format on a flow of their own for /v1/hooks)
let most generated requests reach the routes' logic.

Two identities: KEY (organization org_fuzz) sends every generated request; OTHER (org_fuzz_other)
is its peer, as whom schemathesis replays reads of org_fuzz's objects (object_level_authorization:
another organization's resource is a 404).

What openapi.yaml cannot say — a time relative to now, a token or signature only the server can
issue, an ETag that must match, a rule across fields — the hooks fill in from the server, mostly
for schema-valid (positive) requests only, so that those still reach the routes' logic and a
refusal is the server's fault: see `before_call`. `filter_failure` drops exactly the failures that
are the SPEC's behaviour rather than a fault, and prints each with its reason.
"""

import datetime
import hashlib
import http.server
import json
import os
import random
import sys
import time
import urllib.error
import urllib.parse
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


def call(base, key, method, path, body=None, headers=None):
    """(status, parsed JSON or None, headers) of one request."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("authorization", f"Bearer {key}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read() or b"null"), response.headers
    except urllib.error.HTTPError as error:
        return error.code, None, error.headers


def created(base, key, path, body):
    status, answer, _ = call(base, key, "POST", path, body)
    if status not in (200, 201):
        raise SystemExit(f"seeding: POST {path} answered {status}")
    return answer


def deliveries_of(base, key, webhook):
    """The ids of the endpoint's deliveries (its newest 100), or [] if it has none or is not there."""
    status, answer, _ = call(base, key, "GET", f"/v1/webhooks/{webhook}/deliveries?limit=100")
    if status == 200 and isinstance(answer, dict):
        return [d["id"] for d in answer.get("deliveries") or [] if isinstance(d, dict) and "id" in d]
    return []


def toml_list(values):
    return "[" + ", ".join(json.dumps(str(v)) for v in values) + "]"


def seed(base, key, other_key, receiver_url, out):
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
    slugs = [slug, other["slug"]]
    # The publish and the callbacks' events are delivered to the endpoint after the requests have
    # answered: their deliveries, for the routes of one delivery to find (up to 60 s).
    started = time.monotonic()
    deliveries = deliveries_of(base, key, webhook["id"])
    while not deliveries and time.monotonic() - started < 60:
        time.sleep(0.2)
        deliveries = deliveries_of(base, key, webhook["id"])
    if not deliveries:
        raise SystemExit("seeding: no delivery to the seeded webhook endpoint within 60 s")

    dictionaries = {
        # A path's {flow} is a slug or a version's numeric id; a body's or a filter's `flow`, a slug.
        "flow_refs": [*slugs, str(published["id"]), str(draft["id"])],
        "flow_slugs": slugs,
        "callbacks": callbacks,
        "webhooks": [webhook["id"]],
        "deliveries": deliveries,
    }
    operations = [
        ("^/v1/callbacks/", {"path.id": "callbacks"}),
        ("^/v1/webhooks/\\{id\\}/deliveries/", {"path.id": "webhooks", "path.delivery": "deliveries"}),
        ("^/v1/webhooks/", {"path.id": "webhooks"}),
    ]
    # Trigger URLs: one for the routes that manage them (which rotate, disable and delete it), and
    # one in each format for /v1/hooks only; the hook sends each one's signature (see before_call).
    trigger = created(base, key, f"/v1/flows/{slug}/callbacks", {})
    dictionaries["flow_callbacks"] = [trigger["id"]]
    operations.append(("^/v1/flows/\\{flow\\}/callbacks/", {"path.callback": "flow_callbacks"}))
    # On a flow of their own, which no dictionary names, so the fuzzer rarely archives it.
    hooked = created(base, key, "/v1/flows", {**flow, "name": "Fuzz trigger URLs"})
    created(base, key, f"/v1/flows/{hooked['slug']}/publish", {})
    signatures = {}
    for format in ("json", "xml", "txt"):
        hook = created(base, key, f"/v1/flows/{hooked['slug']}/callbacks", {"format": format})
        signatures[hook["id"]] = urllib.parse.unquote(hook["url"].split("signature=", 1)[1])
    dictionaries["hooks"] = list(signatures)
    operations.append(("^/v1/hooks/", {"path.id": "hooks"}))
    with open(out.removesuffix(".toml") + "-signatures.json", "w") as document:
        json.dump(signatures, document)

    # The identities: the first sends every request; the peer gets the owner's reads replayed.
    identities = out.removesuffix(".toml") + "-identities.json"
    with open(identities, "w") as document:
        json.dump(
            {
                "auth": [
                    {"name": "org_fuzz", "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {key}"}]},
                    {
                        "name": "org_fuzz_other",
                        "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {other_key}"}],
                    },
                ]
            },
            document,
        )

    lines = [
        "[auth.wfc]",
        f"path = {json.dumps(os.path.abspath(identities))}",
        'user = "org_fuzz"',
        'peers = ["org_fuzz", "org_fuzz_other"]',
        "",
    ]
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {toml_list(values)}", ""]
    lines += [
        "[parameters]",
        '"path.flow" = { dictionary = "flow_refs", probability = 0.8 }',
        '"body.flow" = { dictionary = "flow_slugs", probability = 0.8 }',
        '"query.flow" = { dictionary = "flow_slugs", probability = 0.8 }',
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
    from schemathesis.core.parameters import ParameterLocation
    from schemathesis.openapi.checks import EnsureResourceAvailability, RejectedPositiveData, UseAfterFree
    from schemathesis.core.failures import AcceptedNegativeData, ServerError

    RECEIVER_URL = os.environ["FUZZ_RECEIVER_URL"]
    BASE_URL = os.environ["FUZZ_BASE_URL"]
    KEY = os.environ["FUZZ_KEY"]
    # The seeded trigger URLs' signatures, by trigger id.
    with open(os.environ["FUZZ_SIGNATURES"]) as document:
        SIGNATURES = json.load(document)
    # openapi.yaml's example trigger id, which the coverage phase sends most.
    EXAMPLE_TRIGGER = "fcb_1bKq9Xz3Lc5Mp7Qr9St1Uv3"
    # SPEC §1: a body over 256 KiB is a 413, whatever it holds.
    MAX_BODY_BYTES = 256 * 1024
    # SPEC §4: scheduled_at in the future and within 365 days; expires_at after it.
    MAX_AHEAD = datetime.timedelta(days=365)
    # The server reads the clock a moment after the hook: keep clear of the edges by this much.
    MARGIN = datetime.timedelta(minutes=5)
    # SPEC §8: deliveries are kept 30 days; `recover`'s `since` must be within them.
    RETENTION = datetime.timedelta(days=30)
    # What each list calls its page size.
    PAGE_SIZE = {"/v1/flows": "page_size", "/v1/flows/{flow}/versions": "page_size"}
    # The If-Match the hook sent, by case id, to tell a concurrent change from a bad ETag.
    SENT_ETAGS = {}
    # The store fuzzed, and the server's log with where it ended when each case was sent.
    STORE = os.environ.get("FUZZ_STORE", "memory")
    SERVER_LOG = os.environ.get("FUZZ_SERVER_LOG")
    LOG_OFFSETS = {}

    def server(method, path):
        """(status, JSON body or None, headers) of a request as the fuzzed organization; status 0
        when the server did not answer (the fuzzer's own request then tells what is wrong)."""
        try:
            return call(BASE_URL, KEY, method, path)
        except OSError:
            return 0, None, {}

    def is_positive(case):
        meta = case.meta
        return meta is None or meta.generation.mode.is_positive

    def rng(case):
        """Randomness that repeats with the generated data (FUZZ_SEED repeats a run)."""
        return random.Random(hashlib.sha256(repr((case.path_parameters, case.query, case.body)).encode()).digest())

    def parse_time(text):
        if not isinstance(text, str):
            return None
        try:
            at = datetime.datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            return None
        return at if at.tzinfo is not None else None

    def render_time(at, like):
        """`at` written in the offset `like` was written in (offsets are part of what is fuzzed)."""
        zone = like.tzinfo if like is not None and like.tzinfo is not None else datetime.timezone.utc
        text = at.astimezone(zone).isoformat(timespec="milliseconds")
        return text.replace("+00:00", "Z") if zone == datetime.timezone.utc else text

    def fix_times(case, body, current_scheduled_at=None):
        """scheduled_at in the future and within 365 days, expires_at after it: relative to now,
        which no schema can say. Times that already obey are kept."""
        now = datetime.datetime.now(datetime.timezone.utc)
        draw = rng(case)
        scheduled = body.get("scheduled_at")
        if scheduled is not None:
            at = parse_time(scheduled)
            if at is None or not (now + MARGIN < at < now + MAX_AHEAD - MARGIN):
                at = now + datetime.timedelta(seconds=draw.randint(3600, 300 * 86400))
                body["scheduled_at"] = render_time(at, parse_time(scheduled))
        expires = body.get("expires_at")
        if expires is not None:
            after = parse_time(body.get("scheduled_at")) or current_scheduled_at or now
            at = parse_time(expires)
            if at is None or not at > after + MARGIN:
                at = after + datetime.timedelta(seconds=draw.randint(3600, 30 * 86400))
                body["expires_at"] = render_time(at, parse_time(expires))

    def fix_data(body):
        """`data` text must parse as YAML, which no schema can say: text that is not JSON is sent
        as a JSON string literal instead (itself a YAML document), so the rest of the body is
        still checked."""
        data = body.get("data")
        if not isinstance(data, str):
            return

        def refuse(constant):
            raise ValueError(constant)

        try:
            json.loads(data, parse_constant=refuse)
        except ValueError:
            body["data"] = json.dumps(data, ensure_ascii=False)

    def fix_entry_points(body):
        """entry_id is unique within a flow: a rule across items, which no schema can say."""
        points = body.get("entry_points")
        if not isinstance(points, list):
            return
        seen = set()
        for point in points:
            if isinstance(point, dict) and isinstance(point.get("entry_id"), str):
                if point["entry_id"] in seen:
                    del point["entry_id"]
                else:
                    seen.add(point["entry_id"])

    def fix_objects(body):
        """`metadata` and `pipeline_config` are kept as DynamoDB maps (SPEC §4, openapi.yaml):
        at most 16 KiB as JSON, 16 levels deep, no empty keys, numbers of magnitude 1e-129 to
        1e125 (or 0) — bounds JSON Schema cannot put on arbitrary nested JSON. Values past them
        are replaced."""

        def storable(value, levels_left):
            if isinstance(value, (dict, list)) and levels_left == 0:
                return None
            if isinstance(value, dict):
                return {k or "_": storable(v, levels_left - 1) for k, v in value.items()}
            if isinstance(value, list):
                return [storable(v, levels_left - 1) for v in value]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                magnitude = abs(float(value)) if abs(value) < 1e300 else float("inf")
                return value if magnitude == 0 or 1e-129 < magnitude < 1e125 else 1
            return value

        def size(value):
            return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())

        for name in ("metadata", "pipeline_config"):
            value = body.get(name)
            if isinstance(value, dict):
                value = storable(value, 16)
                while size(value) > 16 * 1024 - 256:
                    value.pop(next(iter(value)))
                body[name] = value

    def fill_delivery(case, draw):
        """A delivery id is only ever one the server made, of the endpoint in the path: mostly
        one of that endpoint's own (when it has any), so that the routes of one delivery are
        reached beyond their 404."""
        path = case.path_parameters or {}
        if not path.get("id") or draw.random() >= 0.8:
            return
        webhook = urllib.parse.quote(str(path["id"]), safe="")
        status, answer, _ = server("GET", f"/v1/webhooks/{webhook}/deliveries?limit=100")
        ids = [d["id"] for d in (answer or {}).get("deliveries") or []] if status == 200 else []
        if ids:
            path["delivery"] = draw.choice(ids)

    def fix_recover_window(case, body, draw):
        """`since` within the last 30 days and not in the future, `until` from `since` to now:
        relative to now, which no schema can say. Times that already obey are kept."""
        now = datetime.datetime.now(datetime.timezone.utc)
        written = body.get("since")
        since = parse_time(written)
        if since is None or not (now - RETENTION + MARGIN < since < now - MARGIN):
            since = now - datetime.timedelta(seconds=draw.randint(MARGIN.seconds + 60, 29 * 86400))
            body["since"] = render_time(since, parse_time(written))
        until = body.get("until")
        if until is not None:
            at = parse_time(until)
            if at is None or not since <= at <= now:
                body["until"] = render_time(since + (now - since) * draw.random(), at)

    def real_page_token(case):
        """A page token the server issued for the same list and filters (tokens are signed)."""
        name = PAGE_SIZE.get(case.path, "limit")
        query = {k: v for k, v in case.query.items() if k not in ("next_page_token", name)}
        query[name] = 1
        status, answer, _ = server("GET", f"{case.formatted_path}?{urllib.parse.urlencode(query, doseq=True)}")
        if status == 200 and isinstance(answer, dict):
            return answer.get("next_page_token")
        return None

    def fill_signature(case):
        """A trigger URL is its id and signature, which only the server issues: the document's
        example id becomes a seeded trigger, and a seeded trigger mostly gets its own signature
        (unless the query is what a negative case breaks), so the body behind it is reached."""
        draw = rng(case)
        if case.path_parameters.get("id") == EXAMPLE_TRIGGER:
            case.path_parameters["id"] = draw.choice(sorted(SIGNATURES))
        signature = SIGNATURES.get(case.path_parameters.get("id"))
        negative_query = case.meta is not None and case.meta.is_negative_at(ParameterLocation.QUERY)
        if signature is not None and case.query is not None and not negative_query and draw.random() < 0.8:
            case.query["signature"] = signature

    def key_per_body(case, headers):
        """Schemathesis sends a few Idempotency-Keys over and over (the document's example,
        minimal strings), each time with another body: every create after the first would be a
        409 IDEMPOTENCY_KEY_REUSED that never reaches the route's validation. A valid key is made
        specific to the body, so a repeat with the same body is still a replay."""
        key = headers.get("Idempotency-Key")
        if not isinstance(key, str) or (case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)):
            return
        digest = hashlib.sha256(json.dumps(case.body, sort_keys=True, default=str).encode()).hexdigest()
        headers["Idempotency-Key"] = f"{key[:238]}.{digest[:16]}"

    def log_size():
        try:
            return os.path.getsize(SERVER_LOG) if SERVER_LOG else 0
        except OSError:
            return 0

    def sdk_timed_out_since(case):
        """Whether the server logged an AWS SDK call timing out since the case was sent."""
        if not SERVER_LOG or case.id not in LOG_OFFSETS:
            return False
        with open(SERVER_LOG, "rb") as log:
            log.seek(LOG_OFFSETS[case.id])
            return b"request has timed out" in log.read()

    @schemathesis.hook
    def before_call(context, case, kwargs):
        LOG_OFFSETS[case.id] = log_size()
        fill_in(case)
        # Last, so that the key is that of the body as sent.
        if case.headers:
            key_per_body(case, case.headers)

    def fill_in(case):
        body = case.body if isinstance(case.body, dict) else None
        # Every delivery stays on this machine.
        if body is not None and case.path.startswith("/v1/webhooks") and isinstance(body.get("url"), str):
            body["url"] = RECEIVER_URL
        if case.path == "/v1/hooks/{id}":
            fill_signature(case)
        if not is_positive(case):
            return
        draw = rng(case)
        if "{delivery}" in case.path:
            fill_delivery(case, draw)
        if case.path == "/v1/webhooks/{id}/recover" and body is not None:
            fix_recover_window(case, body, draw)
        if case.query and case.query.get("next_page_token"):
            token = real_page_token(case)
            if token is None:
                del case.query["next_page_token"]
            else:
                case.query["next_page_token"] = token
        numeric_flow = str((case.path_parameters or {}).get("flow", "")).isdigit()
        if numeric_flow and case.method == "GET" and case.path == "/v1/flows/{flow}" and case.query:
            # `version` picks a version of a slug; a numeric id is one already (400).
            case.query.pop("version", None)
        current = None
        headers = case.headers if case.headers is not None else {}
        if "If-Match" in headers or (numeric_flow and body and "version" in body) or (
            case.path == "/v1/callbacks/{id}" and body and body.get("expires_at") and "scheduled_at" not in body
        ):
            status, current, response_headers = server("GET", case.formatted_path.removesuffix("/publish"))
            if status != 200:
                current = None
            if "If-Match" in headers and current is not None and response_headers.get("etag"):
                # An ETag the server gave for the resource as it is: only that one may match.
                headers["If-Match"] = response_headers["etag"]
                SENT_ETAGS[case.id] = headers["If-Match"]
        if case.path == "/v1/suppressions/{number}" and "If-Match" in headers and current is None:
            # Nothing suppressed yet: an If-Match can only fail (412); a first PUT has none.
            del headers["If-Match"]
        if body is None:
            return
        if numeric_flow and case.path == "/v1/flows/{flow}/publish" and "version" in body:
            # A numeric id names one version: `version` may only repeat it (400 otherwise).
            if current is not None:
                body["version"] = current["version"]
            else:
                del body["version"]
        if case.path in ("/v1/callbacks", "/v1/hooks/{id}", "/v1/callbacks/{id}"):
            current_scheduled_at = parse_time(current.get("scheduled_at")) if current else None
            fix_times(case, body, current_scheduled_at)
            fix_objects(body)
        if case.path.startswith("/v1/flows"):
            fix_data(body)
            fix_entry_points(body)
            fix_calling_window(body, draw)
        if case.path in ("/v1/callbacks", "/v1/hooks/{id}", "/v1/callbacks/{id}"):
            fix_time_zone(body, "time_zone", draw)
        if case.path == "/v1/suppressions/{number}":
            if isinstance(body.get("expires_at"), str):
                at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
                    days=draw.randint(1, 365)
                )
                body["expires_at"] = render_time(at, parse_time(body["expires_at"]))

    # SPEC §7: IANA names (a string of the right shape is not yet a zone), start before end.
    ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]

    def fix_time_zone(body, name, draw):
        zone = body.get(name)
        if isinstance(zone, str) and zone not in ZONES:
            body[name] = draw.choice(ZONES)

    def fix_calling_window(body, draw):
        window = body.get("calling_window")
        if not isinstance(window, dict):
            return
        fix_time_zone(window, "time_zone", draw)
        start, end = window.get("start"), window.get("end")
        if isinstance(start, str) and isinstance(end, str) and start >= end:
            window["start"], window["end"] = "09:00", "17:00"

    def request_body_size(response):
        body = response.request.body
        return 0 if body is None else len(body if isinstance(body, bytes) else body.encode())

    def json_object(response):
        """The response's JSON object, or {}."""
        try:
            answer = json.loads(response.content)
        except ValueError:
            return {}
        return answer if isinstance(answer, dict) else {}

    def error_details(response):
        return json_object(response).get("details") or []

    @schemathesis.hook
    def filter_failure(context, failure, case, response):
        """Keeps every failure but those `dropped` says why it drops (in the run's output)."""
        reason = dropped(failure, case, response)
        if reason is not None:
            print(f"filter_failure: {failure.code} on {case.method} {case.formatted_path} ({response.status_code}): {reason}")
        return reason is None

    def dropped(failure, case, response):
        """Why this failure is the SPEC's behaviour rather than a fault, or None."""
        # SPEC §1: DynamoDB or the Scheduler unavailable is a 503 UPSTREAM_UNAVAILABLE. The
        # emulator serves one request at a time, far slower than DynamoDB and more so on a busy
        # machine: a call it answers after the SDK's operation timeout is that 503, rightly. On
        # the DynamoDB run only, and only when the server logged the SDK's timeout meanwhile.
        if (
            isinstance(failure, ServerError)
            and STORE == "dynamodb"
            and response.status_code == 503
            and json_object(response).get("code") == "UPSTREAM_UNAVAILABLE"
            and sdk_timed_out_since(case)
        ):
            return "the emulator answered after the SDK's operation timeout (see the server log)"
        # SPEC §1: any body over 256 KiB is a 413; a schema cannot bound a body's encoded size.
        if (
            isinstance(failure, (RejectedPositiveData, AcceptedNegativeData))
            and response.status_code == 413
            and request_body_size(response) > MAX_BODY_BYTES
        ):
            return "a body over 256 KiB"
        # SPEC §2: publishing a version whose stored `data` is not a non-empty mapping is a 400
        # about that version, not about the (valid) request.
        if (
            isinstance(failure, RejectedPositiveData)
            and case.path == "/v1/flows/{flow}/publish"
            and response.status_code == 400
            and [d.get("field") for d in error_details(response)] == ["data"]
            and "cannot be published" in error_details(response)[0].get("message", "")
        ):
            return "the version's stored data is not a non-empty mapping"
        # Two workers change the seeded resources at once: a 412 for an ETag the resource no
        # longer has (it changed after the hook read it) is that race; one it still has is a fault.
        if isinstance(failure, RejectedPositiveData) and response.status_code == 412 and case.id in SENT_ETAGS:
            _, _, headers = server("GET", case.formatted_path)
            if headers.get("etag") != SENT_ETAGS[case.id]:
                return "the resource changed after the hook read its ETag"
            # The same ETag again: it may have changed and changed back meanwhile (a dispatch
            # that could not deliver hands the callback back exactly as it was). The same
            # request again tells that race from a fault: with a matching ETag it must pass.
            body = case.body if isinstance(case.body, dict) else None
            try:
                status, _, _ = call(
                    BASE_URL, KEY, case.method, case.formatted_path, body,
                    {"If-Match": SENT_ETAGS[case.id]},
                )
            except OSError:
                status = 0
            if 200 <= status < 300:
                return "the resource changed and changed back after the hook read its ETag (sent again, it passes)"
        # SPEC §2: publishing, or copying, a version the flow does not have is a 404 for that
        # version; the flow just created is there (its GET answers 200).
        if (
            isinstance(failure, EnsureResourceAvailability)
            and case.path in ("/v1/flows/{flow}/publish", "/v1/flows/{flow}/versions")
            and str(json_object(response).get("error", "")).startswith("Version ")
            and server("GET", f"/v1/flows/{case.path_parameters['flow']}")[0] == 200
        ):
            return "the flow is there; the version number the body named is not"
        # SPEC §2: DELETE on a flow archives it (every version, or the one an id names): it is
        # still served, as ARCHIVED, and so are its versions and trigger URLs.
        if isinstance(failure, UseAfterFree) and failure.free.startswith("DELETE /v1/flows/"):
            deleted = failure.free.split(" ", 1)[1]
            if "/callbacks/" not in deleted:
                if case.path != "/v1/flows/{flow}":
                    return "an archived flow's versions and trigger URLs are still served"
                if json_object(response).get("status") == "ARCHIVED":
                    return "DELETE archives a flow, which is then served as ARCHIVED"
        return None
