//! A Lambda function's start (`flowline_lambda::Cloud`) refuses a missing or bad setting with a
//! message naming it — never a silent default — and each function needs only what it wires.
//! One test, run alone in its binary: it sets and clears process environment variables.

use flowline_core::config::{StartupError, env};
use flowline_lambda::Cloud;

/// Sets exactly `variables` among Flowline's (clearing every other `FLOWLINE_*`).
fn environment(variables: &[(&str, &str)]) {
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("FLOWLINE_")) {
        // SAFETY: this binary's only test runs on one thread and reads the environment only
        // through the code under test, after this returns.
        unsafe { std::env::remove_var(name) };
    }
    for (name, value) in variables {
        // SAFETY: as above.
        unsafe { std::env::set_var(name, value) };
    }
}

const BASE: (&str, &str) = (env::PUBLIC_BASE_URL, "https://api.example.com");
/// Base64 of 32 bytes.
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn named(err: &StartupError) -> String {
    err.to_string()
}

#[tokio::test(flavor = "current_thread")]
async fn a_function_refuses_to_start_without_what_it_wires() {
    // Region and credentials for the SDK's configuration (nothing is called).
    for (name, value) in [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ] {
        // SAFETY: see `environment`.
        unsafe { std::env::set_var(name, value) };
    }

    environment(&[]);
    let err = Cloud::from_env().await.err().expect("no base URL");
    assert_eq!(named(&err), "FLOWLINE_PUBLIC_BASE_URL is not set");

    // A read-only route needs nothing more.
    environment(&[BASE]);
    let app = Cloud::from_env().await.expect("starts").app();
    assert_eq!(app.config.public_base_url, "https://api.example.com");

    // A list route needs the signing key: missing, not base64, too short.
    let err = Cloud::from_env()
        .await
        .unwrap()
        .with_page_tokens()
        .err()
        .expect("no key");
    assert_eq!(named(&err), "FLOWLINE_SIGNING_KEY is not set");
    environment(&[BASE, (env::SIGNING_KEY, "not base64 at all!!")]);
    let err = Cloud::from_env()
        .await
        .unwrap()
        .with_page_tokens()
        .err()
        .expect("bad key");
    assert_eq!(named(&err), "FLOWLINE_SIGNING_KEY is invalid: not base64");
    assert!(
        !named(&err).contains("at all"),
        "the message never quotes the key"
    );
    environment(&[BASE, (env::SIGNING_KEY, "c2hvcnQ=")]);
    let err = Cloud::from_env()
        .await
        .unwrap()
        .with_page_tokens()
        .err()
        .expect("short key");
    assert_eq!(
        named(&err),
        "FLOWLINE_SIGNING_KEY is invalid: 5 bytes; at least 32 are required"
    );
    environment(&[BASE, (env::SIGNING_KEY, KEY)]);
    Cloud::from_env()
        .await
        .unwrap()
        .with_page_tokens()
        .expect("32 bytes");

    // Routes that schedule need the dispatch function and the scheduler's role.
    environment(&[BASE]);
    let err = Cloud::from_env()
        .await
        .unwrap()
        .with_scheduler()
        .err()
        .expect("no target");
    assert_eq!(named(&err), "FLOWLINE_DISPATCH_FUNCTION_ARN is not set");
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:flowline-dev-dispatch";
    environment(&[BASE, (env::DISPATCH_FUNCTION_ARN, arn)]);
    let err = Cloud::from_env()
        .await
        .unwrap()
        .with_scheduler()
        .err()
        .expect("no role");
    assert_eq!(named(&err), "FLOWLINE_SCHEDULER_ROLE_ARN is not set");
    Cloud::from_env()
        .await
        .unwrap()
        .with_dispatch_invoker()
        .expect("the invoker needs only the dispatch function");
    environment(&[BASE]);
    let err = Cloud::from_env()
        .await
        .unwrap()
        .with_dispatch_invoker()
        .err()
        .expect("no target");
    assert_eq!(named(&err), "FLOWLINE_DISPATCH_FUNCTION_ARN is not set");

    // A request budget that does not read is refused, not ignored.
    environment(&[BASE, (env::RATE_LIMIT, "lots")]);
    let err = Cloud::from_env().await.err().expect("bad budget");
    assert!(named(&err).starts_with("FLOWLINE_RATE_LIMIT is invalid"));

    // The authorizer needs only its keys table.
    environment(&[]);
    let err = flowline_lambda::cloud::authorizer_from_env()
        .await
        .err()
        .expect("no keys table");
    assert_eq!(named(&err), "FLOWLINE_KEYS_TABLE is not set");
    environment(&[(env::KEYS_TABLE, "flowline-dev-keys")]);
    flowline_lambda::cloud::authorizer_from_env()
        .await
        .expect("starts");
}
