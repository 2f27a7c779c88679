//! The SAM template (`infra/template.yaml`) against the code: every function crate is one
//! function, every route of the route table is one `HttpApi` event on its function (and the
//! template has no other), the authorizer guards every route but the trigger URL, and the
//! each function's `main` wires exactly the ports its IAM policies and environment allow. `cfn-lint` (in `scripts/test`)
//! checks the template against CloudFormation and SAM themselves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use flowline_core::config::env;
use flowline_core::routes::{Access, EVENT_FUNCTIONS, ROUTES};
use serde_json::{Map, Value, json};

/// The template as JSON, CloudFormation's short tags (`!Ref X`, `!GetAtt A.B`, `!Sub …`) turned
/// into their long forms (`{"Ref": "X"}`, `{"Fn::GetAtt": "A.B"}`, `{"Fn::Sub": …}`).
fn template() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path:?}: {err}"));
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).unwrap_or_else(|err| panic!("{path:?}: {err}"));
    long_form(yaml)
}

fn long_form(yaml: serde_yaml_ng::Value) -> Value {
    use serde_yaml_ng::Value as Yaml;
    match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => serde_json::to_value(&n).expect("a YAML number is a JSON number"),
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(long_form).collect()),
        Yaml::Mapping(entries) => Value::Object(
            entries
                .into_iter()
                .map(|(key, value)| {
                    let key = match long_form(key) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, long_form(value))
                })
                .collect(),
        ),
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let function = match name {
                "Ref" | "Condition" => name.to_owned(),
                _ => format!("Fn::{name}"),
            };
            json!({ function: long_form(tagged.value) })
        }
    }
}

fn resources(template: &Value) -> &Map<String, Value> {
    template["Resources"]
        .as_object()
        .expect("the template has Resources")
}

/// The function resources, by the binary they run (`Metadata.BuildProperties.Binary`).
fn functions(template: &Value) -> BTreeMap<String, Vec<(&str, &Value)>> {
    let mut functions: BTreeMap<String, Vec<(&str, &Value)>> = BTreeMap::new();
    for (id, resource) in resources(template) {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        assert_eq!(
            resource["Metadata"]["BuildMethod"], "rust-cargolambda",
            "{id} is built by cargo lambda"
        );
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} names its binary in Metadata.BuildProperties.Binary"));
        functions
            .entry(binary.to_owned())
            .or_default()
            .push((id.as_str(), resource));
    }
    functions
}

/// The function crates: the folders of `functions/`.
fn function_crates() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("functions");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{dir:?}: {err}"))
        .map(|entry| entry.expect("a readable entry").path())
        .filter(|path| path.join("Cargo.toml").is_file())
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// One `HttpApi` event of the template.
#[derive(Debug)]
struct HttpRoute {
    method: String,
    path: String,
    function: String,
    /// `Auth.Authorizer` of the event, when it overrides the API's default.
    authorizer: Option<String>,
}

fn http_routes(template: &Value) -> Vec<HttpRoute> {
    let mut routes = Vec::new();
    for (binary, resources) in functions(template) {
        for (id, resource) in resources {
            let Some(events) = resource["Properties"]["Events"].as_object() else {
                continue;
            };
            for (name, event) in events {
                if event["Type"] != "HttpApi" {
                    continue;
                }
                let properties = &event["Properties"];
                assert_eq!(
                    properties["ApiId"],
                    json!({"Ref": "HttpApi"}),
                    "{id}.{name} is on the HttpApi"
                );
                routes.push(HttpRoute {
                    method: properties["Method"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{id}.{name} has a Method"))
                        .to_ascii_uppercase(),
                    path: properties["Path"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{id}.{name} has a Path"))
                        .to_owned(),
                    function: binary.clone(),
                    authorizer: properties["Auth"]["Authorizer"].as_str().map(str::to_owned),
                });
            }
        }
    }
    routes
}

#[test]
fn every_function_crate_is_one_function_of_the_template() {
    let template = template();
    let functions = functions(&template);
    let crates = function_crates();
    for name in &crates {
        let found = functions.get(name).map_or(0, Vec::len);
        assert_eq!(
            found, 1,
            "functions/{name} should be exactly one function of the template, is {found}"
        );
    }
    for (binary, resources) in &functions {
        assert!(
            crates.contains(binary),
            "{resources:?} runs `{binary}`, which no crate of functions/ builds"
        );
    }
}

#[test]
fn every_function_is_named_after_its_crate_and_built_in_it() {
    let template = template();
    for (binary, resources) in functions(&template) {
        for (id, resource) in resources {
            assert_eq!(
                resource["Properties"]["FunctionName"],
                json!({"Fn::Sub": format!("flowline-${{Stage}}-{binary}")}),
                "{id}"
            );
            // `sam build` runs `cargo lambda build --bin <binary>` in CodeUri: only the crate's
            // own folder has that binary.
            assert_eq!(
                resource["Properties"]["CodeUri"],
                format!("../functions/{binary}"),
                "{id}"
            );
        }
    }
}

#[test]
fn every_route_is_wired_to_its_function() {
    let template = template();
    let wired = http_routes(&template);
    for route in ROUTES {
        let matching: Vec<&HttpRoute> = wired
            .iter()
            .filter(|event| event.method == route.method.as_str() && event.path == route.path)
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "{} {} should be one HttpApi event, is {matching:?}",
            route.method,
            route.path
        );
        assert_eq!(
            matching[0].function, route.function,
            "{} {} runs on the wrong function",
            route.method, route.path
        );
    }
}

#[test]
fn the_template_has_no_route_missing_from_the_route_table() {
    let template = template();
    for event in http_routes(&template) {
        assert!(
            ROUTES
                .iter()
                .any(|route| route.method.as_str() == event.method && route.path == event.path),
            "{} {} (on {}) is not in flowline_core::routes::ROUTES",
            event.method,
            event.path,
            event.function
        );
    }
}

#[test]
fn only_the_trigger_url_skips_the_authorizer() {
    let template = template();
    let api = &resources(&template)["HttpApi"];
    assert_eq!(api["Type"], "AWS::Serverless::HttpApi");
    let auth = &api["Properties"]["Auth"];
    let default = auth["DefaultAuthorizer"]
        .as_str()
        .expect("the API has a default authorizer");
    let authorizer = &auth["Authorizers"][default];
    let authorizer_function = functions(&template)["authorizer"][0].0.to_owned();
    assert_eq!(
        authorizer["FunctionArn"],
        json!({"Fn::GetAtt": format!("{authorizer_function}.Arn")})
    );
    // Payload 2.0 with simple responses, always invoked (no identity source) and never cached:
    // the functions answer the SPEC's 401/403/503 from the context it passes.
    assert_eq!(authorizer["AuthorizerPayloadFormatVersion"], "2.0");
    assert_eq!(authorizer["EnableSimpleResponses"], true);
    assert_eq!(authorizer["EnableFunctionDefaultPermissions"], true);
    for source in ["Headers", "QueryStrings", "StageVariables", "Context"] {
        assert!(authorizer["Identity"][source].is_null(), "{source}");
    }
    assert_eq!(authorizer["Identity"]["ReauthorizeEvery"], 0);

    let mut open = Vec::new();
    for event in http_routes(&template) {
        match event.authorizer.as_deref() {
            None => {}
            Some("NONE") => open.push(format!("{} {}", event.method, event.path)),
            Some(other) => panic!("{} {} uses authorizer {other}", event.method, event.path),
        }
        if let Some(route) = ROUTES
            .iter()
            .find(|route| route.method.as_str() == event.method && route.path == event.path)
        {
            assert_eq!(
                event.authorizer.is_some(),
                route.access == Access::Open,
                "{} {}",
                event.method,
                event.path
            );
        }
    }
    assert_eq!(open, ["POST /v1/hooks/{id}"]);
}

#[test]
fn event_functions_have_no_http_route() {
    let template = template();
    let routes = http_routes(&template);
    for name in EVENT_FUNCTIONS {
        assert!(function_crates().contains(*name), "functions/{name} exists");
        let wired: Vec<_> = routes.iter().filter(|r| r.function == *name).collect();
        assert!(wired.is_empty(), "{name} is wired to HTTP: {wired:?}");
    }
}

/// A function's `main.rs`.
fn main_source(function: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("functions")
        .join(function)
        .join("src/main.rs");
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path:?}: {err}"))
}

/// The ports a function's `main` wires into its application: its `Cloud` builder calls.
fn wiring(function: &str) -> BTreeSet<&'static str> {
    let main = main_source(function);
    [
        "with_page_tokens",
        "with_scheduler",
        "with_dispatch_invoker",
        "with_webhooks",
    ]
    .into_iter()
    .filter(|call| main.contains(&format!(".{call}(")))
    .collect()
}

/// The managed policies a function is given (`Policies: [!Ref …]`).
fn policies(function: &Value) -> BTreeSet<String> {
    function["Properties"]["Policies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|policy| policy["Ref"].as_str().map(str::to_owned))
        .collect()
}

/// The environment a function runs with: the Globals' and its own.
fn environment<'a>(template: &'a Value, function: &'a Value) -> BTreeSet<&'a str> {
    let globals = template["Globals"]["Function"]["Environment"]["Variables"].as_object();
    let own = function["Properties"]["Environment"]["Variables"].as_object();
    globals
        .into_iter()
        .chain(own)
        .flat_map(|variables| variables.keys().map(String::as_str))
        .collect()
}

#[test]
fn each_function_wires_exactly_the_ports_its_permissions_and_environment_allow() {
    let template = template();
    for (binary, resources) in functions(&template) {
        let (id, function) = resources[0];
        let wired = wiring(&binary);
        let policies = policies(function);
        let environment = environment(&template, function);
        let schedules =
            policies.contains("WriteSchedulesPolicy") || policies.contains("DeleteSchedulesPolicy");
        assert_eq!(
            wired.contains("with_scheduler"),
            schedules,
            "{id}: wires the scheduler exactly when it may change schedules ({wired:?}, {policies:?})"
        );
        assert_eq!(
            wired.contains("with_dispatch_invoker"),
            policies.contains("DispatchNowPolicy"),
            "{id}: wires the dispatch invoker exactly when it may invoke dispatch"
        );
        if binary != "authorizer" {
            // A function that never touches the table (flow-validate) builds no `Cloud`, so it
            // neither links nor configures the SDK; every other one does, and may read it.
            assert_eq!(
                main_source(&binary).contains("Cloud::from_env("),
                policies.contains("ReadTablePolicy"),
                "{id}: builds its tables exactly when it may read the table"
            );
        }
        // Each variable only some functions read is there exactly when a wired port reads it.
        let reads: &[(&str, &[&str])] = &[
            ("with_page_tokens", &[env::SIGNING_KEY]),
            (
                "with_scheduler",
                &[
                    env::SCHEDULE_GROUP,
                    env::DISPATCH_FUNCTION_ARN,
                    env::SCHEDULER_ROLE_ARN,
                    env::DISPATCH_DLQ_ARN,
                ],
            ),
            ("with_dispatch_invoker", &[env::DISPATCH_FUNCTION_ARN]),
        ];
        let needed: BTreeSet<&str> = reads
            .iter()
            .filter(|(port, _)| wired.contains(port))
            .flat_map(|(_, variables)| variables.iter().copied())
            .collect();
        for variable in reads.iter().flat_map(|(_, variables)| variables.iter()) {
            assert_eq!(
                environment.contains(variable),
                needed.contains(variable),
                "{id}: has {variable} exactly when a port it wires reads it ({wired:?})"
            );
        }
        if binary == "authorizer" {
            assert!(
                environment.contains(env::KEYS_TABLE),
                "{id} reads the keys table"
            );
            assert!(
                wired.is_empty(),
                "the authorizer wires nothing but the keys"
            );
        } else {
            assert!(environment.contains(env::TABLE) && environment.contains(env::PUBLIC_BASE_URL));
        }
        // Never in the cloud (SPEC §6).
        assert!(!environment.contains(env::ALLOW_PRIVATE_TARGETS));
    }
}

#[test]
fn the_wiring_reader_sees_a_main_s_calls() {
    assert_eq!(
        wiring("callback-create"),
        BTreeSet::from(["with_scheduler", "with_dispatch_invoker"])
    );
    assert_eq!(
        wiring("deliver"),
        BTreeSet::from(["with_scheduler", "with_webhooks"])
    );
    assert!(wiring("flow-get").is_empty());
    assert_eq!(wiring("flow-list"), BTreeSet::from(["with_page_tokens"]));
}

#[test]
fn the_scheduler_target_is_the_dispatch_function() {
    let template = template();
    let (id, dispatch) = functions(&template)["dispatch"][0];
    let name = dispatch["Properties"]["FunctionName"]["Fn::Sub"]
        .as_str()
        .unwrap_or_else(|| panic!("{id} has a FunctionName"));
    // Function ARNs are built from the dispatch function's name (a !GetAtt would be circular:
    // the dispatch function gets them too, and the scheduler role names it), so each must
    // name that function.
    let mut arns = Vec::new();
    collect_function_arns(&template, &mut arns);
    assert!(arns.len() >= 3, "{arns:?}");
    for arn in arns {
        assert!(
            arn.ends_with(&format!(":function:{name}")),
            "{arn} names {name}"
        );
    }
}

fn collect_function_arns<'a>(value: &'a Value, arns: &mut Vec<&'a str>) {
    match value {
        Value::String(text) if text.contains(":function:") => arns.push(text),
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_function_arns(item, arns)),
        Value::Object(entries) => entries
            .values()
            .for_each(|item| collect_function_arns(item, arns)),
        _ => {}
    }
}

#[test]
fn the_sweeper_runs_every_five_minutes() {
    let template = template();
    let (id, sweeper) = functions(&template)["sweeper"][0];
    let events: Vec<&Value> = sweeper["Properties"]["Events"]
        .as_object()
        .unwrap_or_else(|| panic!("{id} has events"))
        .values()
        .collect();
    assert_eq!(events.len(), 1, "{id}: {events:?}");
    assert_eq!(events[0]["Type"], "ScheduleV2");
    assert_eq!(
        events[0]["Properties"]["ScheduleExpression"],
        "rate(5 minutes)"
    );
}

#[test]
fn every_alarm_notifies_the_required_notification_target() {
    let template = template();
    assert!(
        template["Parameters"]["AlarmNotification"]
            .get("Default")
            .is_none(),
        "AlarmNotification is required: an alarm that notifies nobody is no alarm"
    );
    let target =
        json!([{"Fn::If": ["AlarmToTopic", {"Ref": "AlarmNotification"}, {"Ref": "AlarmTopic"}]}]);
    let alarms: Vec<(&String, &Value)> = resources(&template)
        .iter()
        .filter(|(_, resource)| resource["Type"] == "AWS::CloudWatch::Alarm")
        .collect();
    let names: BTreeSet<&str> = alarms.iter().map(|(id, _)| id.as_str()).collect();
    for expected in [
        "FunctionErrorsAlarm",
        "FunctionThrottlesAlarm",
        "Api5xxAlarm",
        "DispatchFailuresAlarm",
        "DispatchLagAlarm",
        "DynamoDbThrottlesAlarm",
        "DispatchDeadLetterAlarm",
        "DeliverDeadLetterAlarm",
    ] {
        assert!(names.contains(expected), "no {expected}: {names:?}");
    }
    for (id, alarm) in alarms {
        for actions in ["AlarmActions", "OKActions"] {
            assert_eq!(alarm["Properties"][actions], target, "{id}'s {actions}");
        }
        let description = alarm["Properties"]["AlarmDescription"].to_string();
        assert!(
            description.contains("docs/operations.md#"),
            "{id} names its runbook entry: {description}"
        );
    }
}

#[test]
fn dispatch_has_reserved_concurrency_and_the_sweeper_runs_one_at_a_time() {
    let template = template();
    let functions = functions(&template);
    let reserved =
        |binary: &str| functions[binary][0].1["Properties"]["ReservedConcurrentExecutions"].clone();
    assert_eq!(
        reserved("dispatch"),
        json!({"Ref": "DispatchReservedConcurrency"})
    );
    assert_eq!(reserved("sweeper"), json!(1));
}
