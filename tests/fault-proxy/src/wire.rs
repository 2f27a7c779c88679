//! AWS errors as each service puts them on the wire, so the SDK parses them into its typed
//! errors: DynamoDB's JSON 1.0 (`__type` in the body), Scheduler's and Lambda's REST-JSON
//! (`x-amzn-ErrorType` header, `Message`/`message` in the body).

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

pub type Answer = Response<Full<Bytes>>;

/// The errors the proxy knows, with AWS's status. DynamoDB's messages are AWS's wording; the
/// Scheduler and Lambda ones are stand-ins (callers match on codes, never on messages).
struct Known {
    service: &'static str,
    code: &'static str,
    status: u16,
    message: &'static str,
}

const KNOWN: &[Known] = &[
    Known {
        service: "dynamodb",
        code: "ProvisionedThroughputExceededException",
        status: 400,
        message: "The level of configured provisioned throughput for the table was exceeded. \
                  Consider increasing your provisioning level with the UpdateTable API.",
    },
    Known {
        service: "dynamodb",
        code: "ThrottlingException",
        status: 400,
        message: "Rate of requests exceeds the allowed throughput.",
    },
    Known {
        service: "dynamodb",
        code: "RequestLimitExceeded",
        status: 400,
        message: "Throughput exceeds the current throughput limit for your account. Please \
                  contact AWS Support at https://aws.amazon.com/support request a limit increase",
    },
    Known {
        service: "dynamodb",
        code: "InternalServerError",
        status: 500,
        message: "Internal server error",
    },
    Known {
        service: "dynamodb",
        code: "TransactionConflictException",
        status: 400,
        message: "Transaction is ongoing for the item",
    },
    Known {
        service: "dynamodb",
        code: "ConditionalCheckFailedException",
        status: 400,
        message: "The conditional request failed",
    },
    Known {
        service: "scheduler",
        code: "ThrottlingException",
        status: 429,
        message: "Rate exceeded",
    },
    Known {
        service: "scheduler",
        code: "InternalServerException",
        status: 500,
        message: "Internal server error",
    },
    Known {
        service: "scheduler",
        code: "ConflictException",
        status: 409,
        message: "Conflict",
    },
    Known {
        service: "lambda",
        code: "TooManyRequestsException",
        status: 429,
        message: "Rate Exceeded.",
    },
    Known {
        service: "lambda",
        code: "ServiceException",
        status: 500,
        message: "An internal error occurred.",
    },
];

fn known(service: &str, code: &str) -> Option<&'static Known> {
    KNOWN
        .iter()
        .find(|k| k.service == service && k.code == code)
}

/// AWS's HTTP status for `code` on `service`, if the proxy knows it.
pub fn status_of(service: &str, code: &str) -> Option<u16> {
    known(service, code).map(|k| k.status)
}

/// The error `code` in `service`'s protocol.
pub fn error(service: &str, code: &str, status: Option<u16>, message: Option<&str>) -> Answer {
    let known = known(service, code);
    let status = status.or(known.map(|k| k.status)).unwrap_or(400);
    let message = message
        .or(known.map(|k| k.message))
        .unwrap_or("Injected by flowline-fault-proxy");
    match service {
        "dynamodb" => json_1_0(
            status,
            json!({
                "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"),
                "message": message,
            }),
        ),
        "lambda" => {
            // Lambda's error shapes differ in the case of `message`; the SDK reads the typed
            // error's field by its exact name.
            let key = if matches!(
                code,
                "TooManyRequestsException"
                    | "ResourceConflictException"
                    | "ResourceNotReadyException"
            ) {
                "message"
            } else {
                "Message"
            };
            let kind = if status >= 500 { "Service" } else { "User" };
            rest_json(status, code, json!({ "Type": kind, key: message }))
        }
        _ => rest_json(status, code, json!({ "Message": message })),
    }
}

/// DynamoDB's `TransactionCanceledException` for the transaction in `request`: one reason per
/// item, `reason` on `item` (every item when `None`), `None` on the others.
pub fn transaction_canceled(request: &[u8], reason: &str, item: Option<usize>) -> Answer {
    let items = serde_json::from_slice::<Value>(request)
        .ok()
        .and_then(|body| body["TransactItems"].as_array().map(Vec::len))
        .unwrap_or(0);
    let codes: Vec<&str> = (0..items)
        .map(|i| {
            if item.is_none_or(|k| k == i) {
                reason
            } else {
                "None"
            }
        })
        .collect();
    let reasons: Vec<Value> = codes
        .iter()
        .map(|&code| match reason_message(code) {
            Some(message) => json!({ "Code": code, "Message": message }),
            None => json!({ "Code": code }),
        })
        .collect();
    json_1_0(
        400,
        json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "CancellationReasons": reasons,
            "Message": format!(
                "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
                codes.join(", ")
            ),
        }),
    )
}

/// DynamoDB's message for a cancellation reason (`None` carries none).
fn reason_message(code: &str) -> Option<&'static str> {
    Some(match code {
        "ConditionalCheckFailed" => "The conditional request failed",
        "TransactionConflict" => "Transaction is ongoing for the item",
        "ThrottlingError" => {
            "Throughput exceeds the current capacity of your table or index. DynamoDB is \
             automatically scaling your table or index so please try again shortly. If \
             exceptions persist, check if you have a hot key: \
             https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html"
        }
        "ProvisionedThroughputExceeded" => {
            "The level of configured provisioned throughput for the table was exceeded. \
             Consider increasing your provisioning level with the UpdateTable API."
        }
        _ => return None,
    })
}

/// A bare status with an empty body, as a load balancer in front of the service answers.
pub fn bare_status(status: u16) -> Answer {
    answer(status, Vec::new(), &[])
}

/// A DynamoDB (JSON 1.0) answer with this exact body.
pub fn json_answer(status: u16, body: Bytes) -> Answer {
    answer(
        status,
        body.to_vec(),
        &[("content-type", "application/x-amz-json-1.0")],
    )
}

fn json_1_0(status: u16, body: Value) -> Answer {
    answer(
        status,
        body.to_string().into_bytes(),
        &[("content-type", "application/x-amz-json-1.0")],
    )
}

fn rest_json(status: u16, code: &str, body: Value) -> Answer {
    answer(
        status,
        body.to_string().into_bytes(),
        &[
            ("content-type", "application/json"),
            ("x-amzn-errortype", code),
        ],
    )
}

fn answer(status: u16, body: Vec<u8>, headers: &[(&str, &str)]) -> Answer {
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        // Every AWS answer has one; the SDK puts it in the error's metadata.
        .header(
            "x-amzn-requestid",
            format!("{:032X}", rand::random::<u128>()),
        );
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    response
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(answer: Answer) -> Value {
        let bytes = answer.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn cancellation_reasons_name_the_chosen_item_only() {
        let request = br#"{"TransactItems": [{"Put": {}}, {"Update": {}}, {"Delete": {}}]}"#;
        let answer = transaction_canceled(request, "ConditionalCheckFailed", Some(1));
        assert_eq!(answer.status(), 400);
        let body = body(answer).await;
        assert_eq!(
            body["Message"],
            "Transaction cancelled, please refer cancellation reasons for specific reasons \
             [None, ConditionalCheckFailed, None]"
        );
        assert_eq!(body["CancellationReasons"][0], json!({"Code": "None"}));
        assert_eq!(
            body["CancellationReasons"][1]["Message"],
            "The conditional request failed"
        );
    }
}
