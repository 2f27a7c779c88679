"""BENCHMARKS.md from benches/results/*.json, and the cost model (benches/run's last steps)."""

import statistics
from pathlib import Path

COMMAND = "benches/run"

# us-east-1 list prices assumed by the cost model (AWS's public pricing pages as of mid-2025;
# check them before relying on the totals). Free tiers are ignored.
PRICES = {
    "as_of": "2025-06 (AWS public list prices, us-east-1; not re-checked on the day of the run)",
    "apigw_http_per_million": 1.00,  # HTTP API, first 300 M requests a month, per 512 KB
    "lambda_requests_per_million": 0.20,
    "lambda_arm64_gb_second": 0.0000133334,  # first 7.5 billion GB-s a month
    "dynamodb_write_request_unit_per_million": 0.625,  # on-demand, since the Nov 2024 cut
    "dynamodb_read_request_unit_per_million": 0.125,
    "scheduler_invocations_per_million": 1.00,  # schedule API calls are not billed
    "cloudwatch_logs_ingestion_per_gb": 0.50,
    "data_transfer_out_per_gb": 0.09,
}
MEMORY_GB = 0.25  # the template's MemorySize: 256
AWS_CALL_MS = 5.0  # assumed in-region round trip of one DynamoDB/Scheduler call (not measured here)
WEBHOOK_ANSWER_MS = 100.0  # assumed time the customer's endpoint takes to answer a dispatch
LOG_BYTES_PER_INVOCATION = 1200  # START/END/REPORT platform lines + the function's own JSON line
WEBHOOK_BYTES = 2500  # a callback.dispatch / callback.dispatched delivery with headers


def mib(n: float) -> str:
    return f"{n / 2**20:.2f}"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "–"


def met(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def calls_text(row: dict) -> str:
    s, k, p = row["store"], row["keys"], row["ports"]
    parts = []
    if s["get"] + k["get"]:
        parts.append(f"{s['get'] + k['get']} GetItem")
    if s["get_many"]:
        parts.append(f"{s['get_many']} BatchGetItem ({s['get_many_keys']} keys)")
    if s["query"]:
        parts.append(f"{s['query']} Query ({s['query_items']} items)")
    singles = row.get("single_writes", {})
    for kind, name in (("put", "PutItem"), ("delete", "DeleteItem"), ("check", "ConditionCheck")):
        if singles.get(kind):
            parts.append(f"{singles[kind]} {name}")
    if s["transactions"]:
        tx_items = s["write_items"] - sum(singles.values())
        parts.append(f"{s['transactions']} TransactWriteItems ({tx_items} items)")
    if s["increment"]:
        parts.append(f"{s['increment']} UpdateItem ADD")
    for field, name in (("schedule", "CreateSchedule"), ("reschedule", "UpdateSchedule"), ("unschedule", "DeleteSchedule"),
                        ("invoke", "Lambda Invoke"), ("post", "webhook POST")):
        if p[field]:
            parts.append(f"{p[field]} {name}")
    return ", ".join(parts) or "none"


def cost_model(load) -> dict:
    costs = load("costs")
    cold = load("cold")
    warm = load("warm")
    if not costs:
        return {}
    rows = {r["function"]: r for r in costs["data"]["dynamodb"]}
    warm_ns = {k: v["p50_ns"] for k, v in (warm["data"].items() if warm else [])}
    cold_ms = {k: v["median"] for k, v in (cold["data"]["summary"].items() if cold else [])}

    def aws_calls(row: dict) -> int:
        s, k, p = row["store"], row["keys"], row["ports"]
        return s["get"] + s["get_many"] + s["query"] + s["write"] + s["increment"] + k["get"] + p["schedule"] + p["reschedule"] + p["unschedule"] + p["invoke"]

    steps = [
        ("authorizer", "POST /v1/callbacks: the Lambda authorizer (no caching: every request)"),
        ("callback-create", "POST /v1/callbacks: the route"),
        ("dispatch", "the schedule fires: dispatch"),
    ]
    lines = []
    total = {"apigw": 0.0, "lambda_requests": 0.0, "lambda_duration_warm": 0.0, "lambda_duration_cold": 0.0,
             "dynamodb_reads": 0.0, "dynamodb_writes": 0.0, "scheduler": 0.0, "logs": 0.0, "transfer": 0.0}
    million = 1_000_000
    total["apigw"] = PRICES["apigw_http_per_million"]
    total["scheduler"] = PRICES["scheduler_invocations_per_million"]
    for function, what in steps:
        row = rows[function]
        rcu, wcu = row["capacity"]["rcu"], row["capacity"]["wcu"]
        warm_ms = warm_ns.get(function, 0) / 1e6 + AWS_CALL_MS * aws_calls(row) + (WEBHOOK_ANSWER_MS * row["ports"]["post"] if function == "dispatch" else 0)
        billed_warm = max(1.0, round(warm_ms + 0.5))
        billed_cold = cold_ms.get(function, 0)
        total["lambda_requests"] += PRICES["lambda_requests_per_million"]
        total["lambda_duration_warm"] += million * MEMORY_GB * billed_warm / 1000 * PRICES["lambda_arm64_gb_second"]
        total["lambda_duration_cold"] += million * MEMORY_GB * billed_cold / 1000 * PRICES["lambda_arm64_gb_second"]
        total["dynamodb_reads"] += rcu * PRICES["dynamodb_read_request_unit_per_million"]
        total["dynamodb_writes"] += wcu * PRICES["dynamodb_write_request_unit_per_million"]
        total["logs"] += million * LOG_BYTES_PER_INVOCATION / 2**30 * PRICES["cloudwatch_logs_ingestion_per_gb"]
        if function == "dispatch":
            total["transfer"] += million * row["ports"]["post"] * WEBHOOK_BYTES / 2**30 * PRICES["data_transfer_out_per_gb"]
        lines.append({"function": function, "what": what, "calls": calls_text(row), "rcu": rcu, "wcu": wcu,
                      "aws_calls": aws_calls(row), "billed_ms_warm": billed_warm, "billed_ms_cold": round(billed_cold, 1)})
    warm_total = sum(v for k, v in total.items() if k != "lambda_duration_cold")
    cold_total = sum(v for k, v in total.items() if k != "lambda_duration_warm")
    return {"prices": PRICES, "assumptions": {"memory_gb": MEMORY_GB, "aws_call_ms": AWS_CALL_MS, "webhook_answer_ms": WEBHOOK_ANSWER_MS,
                                              "log_bytes_per_invocation": LOG_BYTES_PER_INVOCATION, "webhook_bytes": WEBHOOK_BYTES},
            "steps": lines, "per_million": total, "total_warm": warm_total, "total_all_cold": cold_total}


def render(load) -> str:
    size, cold, build, costs, scale, warm, wrk, model, bloat = (load(p) for p in ("size", "cold", "build", "costs", "scale", "warm", "load", "model", "bloat"))
    out: list[str] = []
    w = out.append
    newest = max((r for r in (size, cold, build, costs, scale, warm, wrk, model) if r), key=lambda r: r["date"], default=None)
    m = newest["machine"] if newest else {}
    w("# Flowline benchmarks\n")
    w(f"Regenerated by `{COMMAND}` (see `benches/README.md` and `benches/run --help`: each part can be run or skipped "
      "on its own; a part not run keeps its last figures, with their date below). Every figure stands beside a **floor** "
      "measured in the same run, as a ratio.\n")
    w(f"**Machine**: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('ram_gib', '?')} GiB RAM, {m.get('os', '?')}, "
      f"`{m.get('rustc', '?')}`. The 2 cores can be shared with other engineers' builds and test runs (load average "
      f"{m.get('load_average_at_start', 0):.1f} when the newest part started), so timings are noisy: runs are interleaved "
      "and the report uses medians and p90, not means.\n")
    w("Dates of each part: " + ", ".join(f"{p} {r['date']}" for p, r in (("costs", costs), ("scale", scale), ("size", size), ("build", build),
                                                                          ("cold", cold), ("warm", warm), ("load", wrk), ("model", model)) if r) + ".\n")

    # ------------------------------------------------------------------ headline
    w("## Headline\n")
    if size:
        sd = size["data"]
        cs = cold["data"]["summary"] if cold else {}
        w("| function | zipped arm64 MiB | floor | ratio | zipped x86_64 MiB | floor | ratio | cold start median / p90 ms | floor median / p90 ms | ratio (median) |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        worst_size, worst_cold, worst_init = [], [], []
        for function in sorted(sd["floor_of"]):
            floor = sd["floor_of"][function]
            cells = [f"`{function}`"]
            for arch in ("arm64", "x86_64"):
                f = sd["functions"].get(arch, {}).get(function)
                fl = sd["floors"].get(arch, {}).get(floor)
                if f and fl:
                    cells += [mib(f["zipped"]), mib(fl["zipped"]), ratio(f["zipped"], fl["zipped"])]
                    worst_size.append((f["zipped"] / fl["zipped"], function, arch))
                else:
                    cells += [mib(f["zipped"]) if f else "–", "–", "–"]
            c, fc = cs.get(function), cs.get(f"floor:{function}")
            if c and fc:
                cells += [f"{c['median']:.1f} / {c['p90']:.1f}", f"{fc['median']:.1f} / {fc['p90']:.1f}", ratio(c["median"], fc["median"])]
                worst_cold.append((c["median"] / fc["median"], function))
                if "init_median" in c and "init_median" in fc:
                    worst_init.append((c["init_median"] / fc["init_median"], function))
            else:
                cells += ["–", "–", "–"]
            w("| " + " | ".join(cells) + " |")
        hello = sd["floors"].get("x86_64", {}).get("floor-hello"), sd["floors"].get("arm64", {}).get("floor-hello")
        hc = cs.get("floor-hello")
        hello_cold = f"{hc['median']:.1f} / {hc['p90']:.1f}" if hc else "–"
        w(f"| floor: hello world (`lambda_runtime` only) | {mib(hello[1]['zipped']) if hello[1] else '–'} | | | "
          f"{mib(hello[0]['zipped']) if hello[0] else '–'} | | | {hello_cold} | | |")
        for label, name in (("python:flow-get", "`flow-get` in Python 3.11 + boto3 (awslambdaric)"), ("node:flow-get", "`flow-get` in Node 20 + SDK v3")):
            c, fc = cs.get(label), cs.get("flow-get")
            if c:
                w(f"| {name} | | | | | | | {c['median']:.1f} / {c['p90']:.1f} | Rust `flow-get` {fc['median']:.1f} | {ratio(c['median'], fc['median'])} (vs Rust) |")
        if build:
            w(f"\n**Clean build** (`cargo lambda build --release --arm64` of all {build['data']['functions']} functions, cold target dir): "
              f"**{build['data']['seconds'] / 60:.1f} min** (target ≤ 20 min; {build['date']}).\n")
        w("Floors: each function's floor is the minimal Rust function for its job (see *Floors* below): the same runtime crate, "
          "`aws-config` and only the SDK clients and operations it calls, making the same calls, with the same release profile.\n")

        # -------------------------------------------------------------- targets
        w("## Targets of issue 8\n")
        measured_size = {arch: len([1 for (_, _, a) in worst_size if a == arch]) for arch in ("arm64", "x86_64")}
        if worst_size:
            over = [x for x in worst_size if x[0] > 1.2]
            top = max(worst_size)
            w(f"- **Size ≤ 1.2× the floor of the same job** (measured: arm64 {measured_size['arm64']} and x86_64 "
              f"{measured_size['x86_64']} of {len(sd['floor_of'])} functions): {met(not over)}. "
              + (f"{len(over)} of {len(worst_size)} function×arch builds are over; the worst is `{top[1]}` ({top[2]}) at {top[0]:.2f}×, "
                 f"the best {min(worst_size)[0]:.2f}× (`{min(worst_size)[1]}`, {min(worst_size)[2]}). See *What is linked* for why."
                 if over else f"worst {top[0]:.2f}× (`{top[1]}`, {top[2]})."))
        for function, floor in sd.get("second_look", {}).items():
            pairs = [(arch, sd["functions"].get(arch, {}).get(function), sd["floors"].get(arch, {}).get(floor)) for arch in ("arm64", "x86_64")]
            shown = [f"{ratio(f['zipped'], fl['zipped'])} ({arch}, floor {mib(fl['zipped'])} MiB)" for arch, f, fl in pairs if f and fl]
            if shown:
                w(f"  - `{function}` beside a floor that also links the parsers its job needs (`{floor}`: the same YAML "
                  f"crate reading and writing, the same bundled time-zone database): {', '.join(shown)}.")
        if worst_cold:
            over = [x for x in worst_cold if x[0] > 1.2]
            top = max(worst_cold)
            w(f"- **Cold start ≤ 1.2× the floor, same run** (measured: {len(worst_cold)} of {len(sd['floor_of'])} functions): {met(not over)}. "
              + (f"{len(over)} of {len(worst_cold)} over; worst `{top[1]}` at {top[0]:.2f}×; median ratio {statistics.median(x[0] for x in worst_cold):.2f}."
                 if over else f"worst `{top[1]}` at {top[0]:.2f}×; median ratio {statistics.median(x[0] for x in worst_cold):.2f}."))
        if worst_init:
            top = max(worst_init)
            over = [x for x in worst_init if x[0] > 1.2]
            w(f"  - Init alone (process start to the first request for an event, beside the floor's): {len(over)} of "
              f"{len(worst_init)} over 1.2×; worst `{top[1]}` at {top[0]:.2f}×, median ratio "
              f"{statistics.median(x[0] for x in worst_init):.2f}. The rest of a cold start is the first invocation's "
              "calls to the emulator.")
    if build:
        minutes = build["data"]["seconds"] / 60
        w(f"- **Clean arm64 build ≤ 20 min**: {met(minutes <= 20)}: {minutes:.1f} min "
          f"({'%.1f min to spare' % (20 - minutes) if minutes <= 20 else '%.1f min over' % (minutes - 20)}; was ~50).")
    if warm:
        gets = {k: v for k, v in warm["data"].items() if k.endswith("-get")}
        # A trigger URL's call creates a callback too.
        creates = {k: v for k, v in warm["data"].items() if k.endswith("-create") or k == "hook-trigger"}
        worst = max(list(gets.items()) + list(creates.items()), key=lambda kv: kv[1]["p50_ns"], default=None)
        if worst:
            ok = worst[1]["p50_ns"] < 50_000
            listed = {name: ", ".join(f"{k} {v['p50_ns'] / 1000:.1f}" for k, v in sorted(group.items()))
                      for name, group in (("gets", gets), ("creates", creates))}
            w(f"- **Warm in-process p50 < 50 µs for gets and creates**: {met(ok)}: slowest is `{worst[0]}` at "
              f"{worst[1]['p50_ns'] / 1000:.1f} µs (gets {listed['gets']} µs; creates {listed['creates']} µs).")
    if scale:
        w(f"- **List pages: identical reads at 100 and 10,000 items**: {met(True)} (the scale test passed: in memory 100 vs 10,000; "
          "on DynamoDB 12 vs 60 in pages of 5; see *Scale*).")
    w("")

    missing = [name for name, r in (("load (wrk)", wrk), ("bloat (`--bloat`)", bloat), ("profile experiment (`--profile-experiment`)", load("profile")),
                                    ("warm (Criterion)", warm), ("cold start", cold), ("build time (`--build-time`)", build)) if not r]
    if missing:
        w("Parts with no results yet (the command has them; they were not run on this machine so far): " + ", ".join(missing) + ".\n")

    # ------------------------------------------------------------------ details
    if size:
        sd = size["data"]
        w("## Size\n")
        w(f"Measured {size['date']}. `cargo lambda build --release --arm64` and `--x86-64` of every function "
          "(`--workspace --exclude flowline --exclude flowline-admin --exclude flowline-core --exclude flowline-adapters --exclude flowline-lambda`, "
          "all functions at once as docs/deploy.md deploys them), and of each distinct floor (benches/floor, one "
          "`cargo lambda build -p floor --no-default-features --features …` per floor, so no floor links another's features). "
          "Sizes are the `bootstrap` zipped alone with deflate (as Lambda receives it). Release profile of both workspaces: "
          f"`{sd['profile']}`.\n")
        w("| floor | features (SDK operations linked) | zipped arm64 MiB | zipped x86_64 MiB | unzipped x86_64 MiB |")
        w("|---|---|---|---|---|")
        for name, features in sorted(sd["floor_features"].items()):
            a = sd["floors"].get("arm64", {}).get(name, {})
            x = sd["floors"].get("x86_64", {}).get(name, {})
            w(f"| `{name}` | {', '.join(features) or '(lambda_runtime only)'} | {mib(a['zipped']) if a else '–'} | {mib(x['zipped']) if x else '–'} | {mib(x['bytes']) if x else '–'} |")
        total = {arch: sum(v["zipped"] for v in sd["functions"].get(arch, {}).values()) for arch in ("arm64", "x86_64")}
        w(f"\nAll functions zipped: arm64 {mib(total['arm64'])} MiB, x86_64 {mib(total['x86_64'])} MiB.\n")

    if bloat:
        w("## What is linked (`cargo bloat --release --crates`, x86_64, symbols kept)\n")
        names = list(bloat["data"])
        tables = {n: {c["name"]: c["size"] for c in bloat["data"][n]["crates"]} for n in names}
        texts = {n: bloat["data"][n].get("text-section-size", 0) for n in names}
        w(f"Measured {bloat['date']}: the same profile with `strip = false`, in a target dir of its own. `.text` of "
          + ", ".join(f"`{n}` {mib(texts[n])} MiB" for n in names) + ".\n")
        crates = sorted(set().union(*tables.values()), key=lambda c: -tables[names[0]].get(c, 0))
        w("| crate | " + " | ".join(f"`{n}` KiB" for n in names) + " | difference KiB |")
        w("|---|" + "---|" * (len(names) + 1))
        for crate in crates[:30]:
            sizes = [tables[n].get(crate, 0) for n in names]
            w(f"| {crate} | " + " | ".join(f"{s / 1024:.0f}" for s in sizes) + f" | {(sizes[0] - sizes[-1]) / 1024:+.0f} |")
        w("")

    profile = load("profile")
    if profile:
        w("## Release profile experiment (x86_64)\n")
        w(f"Measured {profile['date']}: `flow-get`, `callback-create` and their floors built with `[profile.release]` overridden "
          "through `CARGO_PROFILE_RELEASE_*` (Cargo.toml unchanged), each variant in a target dir of its own.\n")
        w("| variant | function | zipped MiB | floor | floor zipped MiB | ratio | build s (function, from cold) |")
        w("|---|---|---|---|---|---|---|")
        for variant, d in profile["data"].items():
            for function in ("flow-get", "callback-create"):
                r = d.get(function)
                if r:
                    w(f"| {variant} | `{function}` | {mib(r['zipped'])} | `{r['floor']}` | {mib(r['floor_zipped'])} | {ratio(r['zipped'], r['floor_zipped'])} | {r['link_seconds']} |")
        w("")

    if build:
        w("## Build time\n")
        w(f"Measured {build['date']}: `cargo lambda build --release --arm64 --workspace --exclude …` of all {build['data']['functions']} "
          "functions from an empty `CARGO_TARGET_DIR` (a separate one, deleted afterwards), wall clock, once. "
          f"**{build['data']['seconds'] / 60:.1f} min**, with the release profile `{build['data'].get('profile', '?')}`. Load "
          f"average {build['data'].get('load_average_before', 0):.1f} at the start and "
          f"{build['data'].get('load_average_after', 0):.1f} at the end (2 cores: about 2 is this build alone)."
          + (f" {build['data']['note']}." if build['data'].get('note') else "")
          + (f" CPU time (user + system) of the build: {build['data']['cpu_seconds'] / 60:.0f} min." if build['data'].get('cpu_seconds') else "")
          + "\n")

    if cold:
        cd = cold["data"]
        w("## Cold start\n")
        w(f"Measured {cold['date']}, {cd['runs']} runs of every binary, interleaved (each run visits every binary in a "
          "shuffled order), after one unmeasured start of each to warm the page cache. Each start: spawn the x86_64 release "
          "`bootstrap` (arm64 cannot run here) with the environment the SAM template gives it, against a Runtime API stub on "
          "loopback (benches/cold_start.py), until the stub receives its answer to the first invocation — init plus one "
          "invocation including its real AWS calls to the emulator (moto, one request at a time: its latency is part of "
          "every figure, function and floor alike). Tables, schedule group, a published flow, a draft, an endpoint, a callback, "
          "trigger URLs and an API key are made first, through the functions themselves; routes that consume what they act on "
          "(publish, version-create, delete, cancel, dispatch …) get a fresh one before each start, and every answer is "
          f"checked to be a 2xx. \"Dispatch now\" goes to a Lambda Invoke stub (`AWS_ENDPOINT_URL_LAMBDA`; {cd['lambda_invokes']} invokes).\n")
        w("Differences from the fixtures' scenario (tests/costs.rs): no webhook is delivered (the Lambda build's SSRF guard "
          "refuses loopback targets, and nothing else is reachable), so `dispatch` and `callback-dispatch` end as `failed` "
          "(NO_DISPATCH_TARGET) after the same store calls, and their floors skip the POST (but link the HTTPS client); the "
          "sweeper finds nothing overdue (its cursors and shard queries, no Invoke); the delivery log's list and recover find no delivery "
          "(their floors skip the BatchGetItem and the PutItem). Endpoints are registered at a public address literal, "
          "not the fixtures' host name, as this machine may have no DNS.\n")
        if cd.get("not_measured"):
            w(f"Not measured in this run: {', '.join(f'`{f}`' for f in cd['not_measured'])}.\n")
        w("*Init* is process start to the function's first request for an event (what Lambda reports as Init Duration: "
          "loading the binary, logging, the AWS configuration and clients); the rest of a cold start is the first "
          "invocation, whose store calls the emulator answers.\n")
        w("| binary | median ms | p90 ms | min | max | init median / p90 ms | floor plan (FLOOR_PLAN) |")
        w("|---|---|---|---|---|---|---|")
        for label, s in sorted(cd["summary"].items()):
            plan = cd["floor_plans"].get(label.removeprefix("floor:"), "") if label.startswith("floor:") else ""
            init = f"{s['init_median']:.1f} / {s['init_p90']:.1f}" if "init_median" in s else "–"
            w(f"| `{label}` | {s['median']:.1f} | {s['p90']:.1f} | {s['min']:.1f} | {s['max']:.1f} | {init} | {plan} |")
        w("")

    if costs:
        w("## Cost per route (AWS calls per invocation)\n")
        w(f"Measured {costs['date']} by `tests/costs.rs` (in CI: `cargo test --test costs`): every function once on its "
          "fixture, wired as its `main` wires it, with the store wrapped in `MeteredTable` and counting scheduler, invoker and "
          "sender ports; on the in-memory store and on DynamoDB (emulator) — both see exactly the same calls (the test checks). "
          "The test fails when a function makes more or fewer calls than its budget (a budget is exact, and `EXCESS:` names "
          "what the code does that it need not) or reads an item it has itself just written. Capacity units are an "
          "**estimate** from item sizes (the JSON size of each item's document plus its keys; strongly consistent reads: 1 RCU "
          "per 4 KB per item, a Query's items summed; writes 1 WCU per KB per item, doubled in a transaction; reads of missing "
          "items 1 RCU): the ConsumedCapacity the counting proxy will report should replace it.\n")
        w("| function | calls on its fixture (DynamoDB) | items read | RCU~ | WCU~ | budget, and why |")
        w("|---|---|---|---|---|---|")
        for row in costs["data"]["dynamodb"]:
            w(f"| `{row['function']}` | {calls_text(row)} | {row['items_read']} | {row['capacity']['rcu']:.0f} | {row['capacity']['wcu']:.0f} | {row['budget']} — {row['budget_reason']} |")
        w("")

    if scale:
        w("## Scale: reads per list page\n")
        w(f"Measured {scale['date']} by `tests/list_scale.rs` (in CI). Each list route's fixture page and the page after it, with "
          "the table holding a small and a large number of flows, callbacks, endpoints, versions and trigger URLs (made "
          "through the API). Calls and items read are `MeteredTable`'s; they must be identical, and were.\n")
        w("| list | store | items | page 1 | page 2 |")
        w("|---|---|---|---|---|")
        for backend in ("memory", "dynamodb"):
            for row in scale["data"].get(backend, []):
                def short(c: dict) -> str:
                    return f"{c['get']} Get, {c['get_many']} BatchGet ({c['get_many_keys']} keys), {c['query']} Query ({c['query_items']} items)"
                if row.get("asserted") is False:
                    w(f"| {row['function']} | {backend} | {row['small']} / {row['large']} endpoints | at {row['small']}: {short(row['first_page'])} | at {row['large']}: {short(row['second_page'])} (not a target: see findings) |")
                else:
                    w(f"| `{row['function']}` | {backend} | {row['small']} and {row['large']} | {short(row['first_page'])} | {short(row['second_page'])} |")
        w("\nOn DynamoDB 12 vs 60 items in pages of 5 rather than 10,000: every item is made through the API on an emulator "
          "that serves one request at a time and copies the table on every transaction (at 250 of each it grew past 9 GB "
          "of memory and had not finished after 20 minutes); 60 items are twelve pages of each list.\n")

    if warm:
        w("## Warm path (in process)\n")
        w(f"Measured {warm['date']}: Criterion (`cargo bench --bench warm`, 30 samples, 2 s each) of each function crate's "
          "`handle` on its fixture's `ApiRequest`, on the embedded store, wired as its `main` wires it, rendered as the Lambda "
          "adapter renders; a current-thread Tokio runtime's `block_on` per call is included. Creates use a fresh "
          "Idempotency-Key per iteration (made outside the timing).\n")
        w("| route | p50 µs | mean µs | p90 of samples µs |")
        w("|---|---|---|---|")
        for route, v in sorted(warm["data"].items()):
            w(f"| `{route}` | {v['p50_ns'] / 1000:.1f} | {v['mean_ns'] / 1000:.1f} | {v['p90_ns_of_samples'] / 1000:.1f} |")
        w("")

    if wrk:
        d = wrk["data"]
        w("## Local server under load\n")
        w(f"Measured {wrk['date']}: `wrk -t{d['threads']} -c{d['connections']} -d{d['seconds']}s --latency` on loopback against the "
          "release build of the local server (`target/release/flowline`, in memory, `FLOWLINE_API_KEYS` set, the organization's request budget lifted so that no answer is a 429; the part stops if any answer is not a 2xx), and against a "
          "minimal axum hello world (benches/floor/axum-hello) as the floor; two interleaved rounds each, medians shown. The "
          "load generator and the server share the same 2 cores.\n")
        w("| target | requests/s | p50 ms | p99 ms | non-2xx | vs floor (req/s) |")
        w("|---|---|---|---|---|---|")
        floor = d["results"].get("floor: axum hello world")
        for name, r in d["results"].items():
            w(f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['non_2xx']} | {ratio(r['rps'], floor['rps']) if floor else '–'} |")
        w("")

    if model and model["data"]:
        d = model["data"]
        w("## Cost model: 1 million callbacks end to end\n")
        w(f"Computed {model['date']} from the measured calls (DynamoDB, above) and durations. One callback: `POST /v1/callbacks` "
          "through API Gateway (the authorizer runs first, uncached), `callback-create` (CreateSchedule; schedule API calls "
          "are not billed), the schedule fires once (deleted after completion), `dispatch` delivers `callback.dispatch` and "
          "logs the delivery. Lifecycle events (`callback.scheduled`, `callback.dispatched`) are written to the outbox in the "
          "same transactions (counted above), but delivering them is not: each event to each endpoint subscribed to it is one "
          "`deliver` invocation (its row in *Cost per route*; Lambda's reads of the DynamoDB stream are free). Prices: " + ", ".join(f"{k} {v}" for k, v in d["prices"].items()) + ". Assumptions: "
          + ", ".join(f"{k} = {v}" for k, v in d["assumptions"].items()) + ".\n")
        w("| step | calls | RCU~ | WCU~ | billed ms (warm est.) | billed ms (if cold: measured cold start) |")
        w("|---|---|---|---|---|---|")
        for s in d["steps"]:
            w(f"| {s['what']} | {s['calls']} | {s['rcu']:.0f} | {s['wcu']:.0f} | {s['billed_ms_warm']:.0f} | {s['billed_ms_cold']} |")
        w("\n| item | USD per million callbacks |")
        w("|---|---|")
        for k, v in d["per_million"].items():
            w(f"| {k.replace('_', ' ')} | {v:.2f} |")
        w(f"| **total (warm invocations)** | **{d['total_warm']:.2f}** |")
        w(f"| total if every invocation were a cold start (upper bound) | {d['total_all_cold']:.2f} |")
        w("\nWarm billed duration = the route's warm in-process p50 + 5 ms per AWS call (+100 ms for the customer's endpoint "
          "to answer each POST, in dispatch), rounded up to 1 ms. The largest item is "
          + max(((k, v) for k, v in d["per_million"].items() if k != "lambda_duration_cold"), key=lambda kv: kv[1])[0].replace("_", " ")
          + ": callback writes are transactions of 10–11 items (the callback, its due entry, its list entries), "
          "each item billed twice in a transaction, and a callback is written three times (create, take, record).\n")
    findings = Path(__file__).with_name("findings.md")
    if findings.exists():
        w(findings.read_text())
    return "\n".join(out) + "\n"
