//! The API Gateway (HTTP API, payload 2.0, simple responses) Lambda authorizer: reads the key
//! of `Authorization` (`Bearer <key>` or the bare key), looks its SHA-256 up in the keys table
//! and hands the routes the caller's organization, key kind and key name. It always allows;
//! the routes answer 401/403/503 in the SPEC's shape (see `flowline_lambda::authorizer::authorizer_context`).

use flowline_core::auth::KeyStore;
use flowline_core::http::text_header;
use flowline_lambda::authorizer::authorizer_context;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request,
};

pub type Response =
    ApiGatewayV2CustomAuthorizerSimpleResponse<serde_json::Map<String, serde_json::Value>>;

pub async fn handle(keys: &KeyStore, request: ApiGatewayV2CustomAuthorizerV2Request) -> Response {
    let authorization = text_header(&request.headers, "Authorization");
    let mut response = Response::default();
    response.is_authorized = true;
    response.context = authorizer_context(keys, authorization).await;
    response
}
