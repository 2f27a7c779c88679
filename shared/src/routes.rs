//! Every route of the API, in one table: the local server routes by it, the SAM template and
//! `openapi.yaml` are checked against it, and each row names the function crate that serves it
//! (`functions/<function>/`).

use std::collections::HashMap;

use http::Method;

/// How a route's caller is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `Authorization: Bearer <key>`, checked by the authorizer.
    ApiKey,
    /// No API key (e.g. a trigger URL carries its own signature).
    Open,
}

#[derive(Debug)]
pub struct Route {
    pub method: Method,
    /// API Gateway syntax: `{name}` is one path segment.
    pub path: &'static str,
    pub function: &'static str,
    pub access: Access,
}

const fn route(method: Method, path: &'static str, function: &'static str) -> Route {
    Route {
        method,
        path,
        function,
        access: Access::ApiKey,
    }
}

pub const ROUTES: &[Route] = &[
    route(Method::POST, "/v1/flows", "flow-create"),
    route(Method::GET, "/v1/flows", "flow-list"),
    route(Method::POST, "/v1/flows/validate", "flow-validate"),
    route(Method::GET, "/v1/flows/{flow}", "flow-get"),
    route(Method::PUT, "/v1/flows/{flow}", "flow-update"),
    route(Method::DELETE, "/v1/flows/{flow}", "flow-delete"),
    route(
        Method::GET,
        "/v1/flows/{flow}/versions",
        "flow-versions-list",
    ),
    route(
        Method::POST,
        "/v1/flows/{flow}/versions",
        "flow-version-create",
    ),
    route(Method::POST, "/v1/flows/{flow}/publish", "flow-publish"),
    route(
        Method::GET,
        "/v1/flows/{flow}/callbacks",
        "flow-callback-list",
    ),
    route(
        Method::POST,
        "/v1/flows/{flow}/callbacks",
        "flow-callback-create",
    ),
    route(
        Method::GET,
        "/v1/flows/{flow}/callbacks/{callback}",
        "flow-callback-get",
    ),
    route(
        Method::PUT,
        "/v1/flows/{flow}/callbacks/{callback}",
        "flow-callback-update",
    ),
    route(
        Method::DELETE,
        "/v1/flows/{flow}/callbacks/{callback}",
        "flow-callback-delete",
    ),
    Route {
        method: Method::POST,
        path: "/v1/hooks/{id}",
        function: "hook-trigger",
        access: Access::Open,
    },
    route(Method::POST, "/v1/callbacks", "callback-create"),
    route(Method::GET, "/v1/callbacks", "callback-list"),
    route(Method::GET, "/v1/callbacks/{id}", "callback-get"),
    route(Method::PATCH, "/v1/callbacks/{id}", "callback-update"),
    route(Method::POST, "/v1/callbacks/{id}/cancel", "callback-cancel"),
    route(Method::POST, "/v1/callbacks/cancel", "callback-bulk-cancel"),
    route(
        Method::POST,
        "/v1/callbacks/{id}/outcome",
        "callback-outcome",
    ),
    route(
        Method::POST,
        "/v1/callbacks/{id}/dispatch",
        "callback-dispatch",
    ),
    route(Method::POST, "/v1/webhooks", "webhook-create"),
    route(Method::GET, "/v1/webhooks", "webhook-list"),
    route(Method::GET, "/v1/webhooks/{id}", "webhook-get"),
    route(Method::PUT, "/v1/webhooks/{id}", "webhook-update"),
    route(Method::DELETE, "/v1/webhooks/{id}", "webhook-delete"),
    route(
        Method::POST,
        "/v1/webhooks/{id}/rotate-secret",
        "webhook-rotate-secret",
    ),
    route(
        Method::GET,
        "/v1/webhooks/{id}/deliveries",
        "webhook-deliveries-list",
    ),
    route(
        Method::GET,
        "/v1/webhooks/{id}/deliveries/{delivery}",
        "webhook-delivery-get",
    ),
    route(
        Method::POST,
        "/v1/webhooks/{id}/deliveries/{delivery}/redeliver",
        "webhook-delivery-redeliver",
    ),
    route(Method::POST, "/v1/webhooks/{id}/recover", "webhook-recover"),
    route(Method::GET, "/v1/suppressions", "suppression-list"),
    route(Method::PUT, "/v1/suppressions/{number}", "suppression-put"),
    route(Method::GET, "/v1/suppressions/{number}", "suppression-get"),
    route(
        Method::DELETE,
        "/v1/suppressions/{number}",
        "suppression-delete",
    ),
];

/// Functions that no HTTP route invokes: the authorizer, the scheduler's target (every
/// scheduled job), the outbox's reader on the table's stream, and the sweeper.
pub const EVENT_FUNCTIONS: &[&str] = &["authorizer", "dispatch", "deliver", "sweeper"];

#[derive(Debug)]
pub enum RouteMatch {
    Found {
        route: &'static Route,
        params: HashMap<String, String>,
    },
    /// The path exists, with other methods.
    MethodNotAllowed {
        allowed: Vec<Method>,
    },
    NotFound,
}

/// Matches a template against a path: the `{name}` segments, percent-decoded, or `None`.
fn match_path(template: &str, path: &str) -> Option<HashMap<String, String>> {
    let mut params = HashMap::new();
    let mut segments = path.trim_end_matches('/').split('/');
    for expected in template.split('/') {
        let segment = segments.next()?;
        match expected.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => {
                if segment.is_empty() {
                    return None;
                }
                let decoded = percent_decode(segment)?;
                params.insert(name.to_owned(), decoded);
            }
            None if expected == segment => {}
            None => return None,
        }
    }
    segments.next().is_none().then_some(params)
}

fn percent_decode(segment: &str) -> Option<String> {
    let bytes: Vec<u8> =
        form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, value)| value.into_owned().into_bytes())?;
    String::from_utf8(bytes).ok()
}

/// The route for a request: among the routes whose path matches, the most specific (fewest
/// parameters); if that path has no route with this method, 405 with the methods it has. So
/// `PUT /v1/flows/validate` is a method `/v1/flows/validate` does not have, not an update of a
/// flow named `validate`. (API Gateway, which has no 405, would pass it on to
/// `PUT /v1/flows/{flow}`, whose handler finds no such flow: 404.)
pub fn match_route(method: &Method, path: &str) -> RouteMatch {
    let matching: Vec<(&'static Route, HashMap<String, String>)> = ROUTES
        .iter()
        .filter_map(|route| Some((route, match_path(route.path, path)?)))
        .collect();
    let Some(fewest) = matching.iter().map(|(_, params)| params.len()).min() else {
        return RouteMatch::NotFound;
    };
    let mut allowed = Vec::new();
    for (route, params) in matching {
        if params.len() != fewest {
            continue;
        }
        if route.method == *method {
            return RouteMatch::Found { route, params };
        }
        allowed.push(route.method.clone());
    }
    RouteMatch::MethodNotAllowed { allowed }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_segments_win_over_parameters() {
        let RouteMatch::Found { route, .. } = match_route(&Method::POST, "/v1/flows/validate")
        else {
            panic!()
        };
        assert_eq!(route.function, "flow-validate");
        let RouteMatch::Found { route, params } =
            match_route(&Method::GET, "/v1/flows/flow_abc%20")
        else {
            panic!()
        };
        assert_eq!(route.function, "flow-get");
        assert_eq!(params["flow"], "flow_abc ");
    }

    #[test]
    fn wrong_methods_and_unknown_paths() {
        assert!(matches!(
            match_route(&Method::PATCH, "/v1/flows"),
            RouteMatch::MethodNotAllowed { .. }
        ));
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            let RouteMatch::MethodNotAllowed { allowed } =
                match_route(&method, "/v1/flows/validate")
            else {
                panic!("{method} /v1/flows/validate is no flow route")
            };
            assert_eq!(allowed, [Method::POST]);
        }
        assert!(matches!(
            match_route(&Method::GET, "/v1/nothing"),
            RouteMatch::NotFound
        ));
        assert!(matches!(
            match_route(&Method::GET, "/v1/flows/a/b/c"),
            RouteMatch::NotFound
        ));
    }

    #[test]
    fn every_function_serves_its_routes_only_once() {
        let mut seen = std::collections::HashSet::new();
        for route in ROUTES {
            assert!(
                seen.insert((route.method.clone(), route.path)),
                "{} {}",
                route.method,
                route.path
            );
        }
    }
}
