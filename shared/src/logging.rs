//! What Flowline's logs may say. Flowline's own lines never carry a key, a secret or a
//! signature; the libraries under it are another matter: at `trace`, the AWS SDK logs whole
//! request and response bodies (items with stored webhook secrets) and the HTTP stacks log
//! headers. Whatever `RUST_LOG` asks for, their lines stop at `debug` — the log filter of the
//! Lambda functions and the local server is [`log_filter`] (tests/secrets_in_logs.rs runs a
//! workload at `trace` through it and finds no secret).

/// Targets whose lines below `debug` would carry what went over the wire.
pub const WIRE_TARGETS: &[&str] = &[
    "aws_smithy_runtime::client::orchestrator",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_sigv4",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
];

/// The `tracing_subscriber::EnvFilter` directives for `requested` (`RUST_LOG`; `info` when
/// unset or blank), with the wire targets capped at `debug` when `trace` is asked for. Only
/// then: a cap is a directive of its own, which would otherwise raise those targets to `debug`
/// under an `info` filter (thousands of SDK lines per invocation, each paid for in CloudWatch).
pub fn log_filter(requested: Option<&str>) -> String {
    let requested = requested
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .unwrap_or("info");
    if !requested.to_ascii_lowercase().contains("trace") {
        return requested.to_owned();
    }
    let caps: Vec<String> = WIRE_TARGETS
        .iter()
        .map(|target| format!("{target}=debug"))
        .collect();
    format!("{requested},{}", caps.join(","))
}

/// The `tracing` level of a Lambda log level (`AWS_LAMBDA_LOG_LEVEL`, which Lambda sets from
/// the function's `LoggingConfig.ApplicationLogLevel`): `TRACE`, `DEBUG`, `INFO`, `WARN`,
/// `ERROR`, `FATAL` (as `error`: tracing has nothing above it), any case.
pub fn lambda_log_level(level: &str) -> Option<&'static str> {
    match level.trim().to_ascii_uppercase().as_str() {
        "TRACE" => Some("trace"),
        "DEBUG" => Some("debug"),
        "INFO" => Some("info"),
        "WARN" => Some("warn"),
        "ERROR" | "FATAL" => Some("error"),
        _ => None,
    }
}

/// What a Lambda function logs: `RUST_LOG` when it says something (a developer's filter), else
/// the function's `AWS_LAMBDA_LOG_LEVEL`, else `info`.
pub fn lambda_requested(rust_log: Option<&str>, lambda_level: Option<&str>) -> Option<String> {
    rust_log
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
        .or_else(|| lambda_level.and_then(lambda_log_level).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_wins_over_the_lambda_level_which_wins_over_info() {
        assert_eq!(
            lambda_requested(Some("debug"), Some("ERROR")).as_deref(),
            Some("debug")
        );
        assert_eq!(
            lambda_requested(Some(" "), Some("WARN")).as_deref(),
            Some("warn")
        );
        assert_eq!(
            lambda_requested(None, Some("fatal")).as_deref(),
            Some("error")
        );
        assert_eq!(lambda_requested(None, Some("LOUD")), None);
        assert_eq!(lambda_requested(None, None), None);
    }

    #[test]
    fn the_wire_targets_are_capped_whatever_is_asked() {
        // Below trace there is nothing to cap, and no directive raises the SDK to debug.
        assert_eq!(log_filter(None), "info");
        assert_eq!(log_filter(Some(" ")), "info");
        assert_eq!(log_filter(Some("warn")), "warn");
        let filter = log_filter(Some("trace,aws_smithy_runtime=trace"));
        assert!(filter.starts_with("trace,aws_smithy_runtime=trace,"));
        assert!(filter.ends_with("rustls=debug"));
        assert!(filter.contains("aws_smithy_runtime::client::orchestrator=debug"));
    }
}
