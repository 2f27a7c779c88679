//! Which AWS service and operation a request is, from what the SDK puts on the wire.

use http::{HeaderMap, Method};

/// A request's service (the SigV4 signing name: `dynamodb`, `scheduler`, `lambda`, …) and
/// operation (`PutItem`, `CreateSchedule`, `Invoke`, …); `unknown` where it cannot be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub service: String,
    pub operation: String,
}

pub const UNKNOWN: &str = "unknown";

impl Call {
    pub fn recognise(method: &Method, path: &str, headers: &HeaderMap) -> Self {
        let service = signing_name(headers).unwrap_or(UNKNOWN).to_owned();
        // JSON-protocol services (DynamoDB: `DynamoDB_20120810.PutItem`) name the operation in
        // a header; REST ones (Scheduler, Lambda) only through the method and path.
        let target = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.rsplit_once('.'))
            .map(|(_, operation)| operation);
        let operation = match (target, service.as_str()) {
            (Some(operation), _) => operation,
            (None, "scheduler") => scheduler_operation(method, path),
            (None, "lambda") => lambda_operation(method, path),
            (None, _) => UNKNOWN,
        };
        Self {
            service,
            operation: operation.to_owned(),
        }
    }
}

/// The service of the SigV4 credential scope:
/// `AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/dynamodb/aws4_request, …`.
fn signing_name(headers: &HeaderMap) -> Option<&str> {
    let authorization = headers.get("authorization")?.to_str().ok()?;
    let credential = authorization.split("Credential=").nth(1)?;
    let scope = credential.split([',', ' ']).next()?;
    let mut parts = scope.rsplit('/');
    (parts.next()? == "aws4_request").then_some(())?;
    parts.next()
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// EventBridge Scheduler's REST routes.
fn scheduler_operation(method: &Method, path: &str) -> &'static str {
    match (method.as_str(), segments(path).as_slice()) {
        ("GET", ["schedules"]) => "ListSchedules",
        ("POST", ["schedules", _]) => "CreateSchedule",
        ("PUT", ["schedules", _]) => "UpdateSchedule",
        ("DELETE", ["schedules", _]) => "DeleteSchedule",
        ("GET", ["schedules", _]) => "GetSchedule",
        ("GET", ["schedule-groups"]) => "ListScheduleGroups",
        ("POST", ["schedule-groups", _]) => "CreateScheduleGroup",
        ("DELETE", ["schedule-groups", _]) => "DeleteScheduleGroup",
        ("GET", ["schedule-groups", _]) => "GetScheduleGroup",
        ("GET", ["tags", _]) => "ListTagsForResource",
        ("POST", ["tags", _]) => "TagResource",
        ("DELETE", ["tags", _]) => "UntagResource",
        _ => UNKNOWN,
    }
}

/// Lambda's REST routes that Flowline and its tests use.
fn lambda_operation(method: &Method, path: &str) -> &'static str {
    match (method.as_str(), segments(path).as_slice()) {
        ("POST", ["2015-03-31", "functions", _, "invocations"]) => "Invoke",
        ("POST", ["2014-11-13", "functions", _, "invoke-async"]) => "InvokeAsync",
        ("POST", ["2015-03-31", "functions"]) => "CreateFunction",
        ("GET", ["2015-03-31", "functions"]) => "ListFunctions",
        ("GET", ["2015-03-31", "functions", _]) => "GetFunction",
        ("DELETE", ["2015-03-31", "functions", _]) => "DeleteFunction",
        ("GET", ["2015-03-31", "functions", _, "configuration"]) => "GetFunctionConfiguration",
        _ => UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(service: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!(
            "AWS4-HMAC-SHA256 Credential=test/20261130/us-east-1/{service}/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=abc"
        );
        headers.insert("authorization", value.parse().unwrap());
        headers
    }

    #[test]
    fn dynamodb_operations_come_from_the_target_header() {
        let mut headers = signed("dynamodb");
        headers.insert(
            "x-amz-target",
            "DynamoDB_20120810.TransactWriteItems".parse().unwrap(),
        );
        let call = Call::recognise(&Method::POST, "/", &headers);
        assert_eq!(call.service, "dynamodb");
        assert_eq!(call.operation, "TransactWriteItems");
    }

    #[test]
    fn rest_operations_come_from_method_and_path() {
        let scheduler = signed("scheduler");
        let cases = [
            (Method::POST, "/schedules/cb_1", "CreateSchedule"),
            (Method::PUT, "/schedules/cb_1", "UpdateSchedule"),
            (Method::DELETE, "/schedules/cb_1", "DeleteSchedule"),
            (Method::GET, "/schedules/cb_1", "GetSchedule"),
            (Method::POST, "/schedule-groups/g", "CreateScheduleGroup"),
        ];
        for (method, path, operation) in cases {
            assert_eq!(
                Call::recognise(&method, path, &scheduler).operation,
                operation
            );
        }
        let lambda = signed("lambda");
        let path =
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Ad/invocations";
        assert_eq!(
            Call::recognise(&Method::POST, path, &lambda).operation,
            "Invoke"
        );
    }

    #[test]
    fn unsigned_requests_are_unknown() {
        let call = Call::recognise(&Method::GET, "/moto-api/", &HeaderMap::new());
        assert_eq!(
            (call.service.as_str(), call.operation.as_str()),
            (UNKNOWN, UNKNOWN)
        );
    }
}
