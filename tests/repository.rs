//! What the repository tells its users stays true: `requests.http` has a request for every
//! route, and the README and the documents under `docs/` link only to files that exist in the
//! repository (a fresh clone has nothing else).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use flowline_core::routes::{ROUTES, RouteMatch, match_route};
use reqwest::Method;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `METHOD target` line of `requests.http`, as (method, path with sample segments).
fn collection_requests() -> Vec<(Method, String)> {
    let text = std::fs::read_to_string(root().join("requests.http")).expect("requests.http");
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];
    text.lines()
        .filter_map(|line| {
            let (method, target) = line.split_once(' ')?;
            methods.contains(&method).then_some(())?;
            // A trigger URL is called as the create answered it, whole: `{{….url}}`.
            let path = if target.starts_with("{{") && target.contains(".url}}") {
                "/v1/hooks/fcb_sample".to_owned()
            } else {
                let path = target.strip_prefix("{{base}}")?;
                let path = path.split('?').next().unwrap_or(path);
                path.split('/')
                    .map(|segment| {
                        if segment.starts_with("{{") {
                            "sample"
                        } else {
                            segment
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("/")
            };
            Some((method.parse().expect("method"), path))
        })
        .collect()
}

#[test]
fn the_request_collection_covers_every_route() {
    let mut covered = BTreeSet::new();
    for (method, path) in collection_requests() {
        if path == "/openapi.yaml" {
            continue;
        }
        match match_route(&method, &path) {
            RouteMatch::Found { route, .. } => {
                covered.insert((route.method.to_string(), route.path));
            }
            _ => panic!("requests.http: {method} {path} is no route of the API"),
        }
    }
    let missing: Vec<String> = ROUTES
        .iter()
        .filter(|route| !covered.contains(&(route.method.to_string(), route.path)))
        .map(|route| format!("{} {}", route.method, route.path))
        .collect();
    assert!(missing.is_empty(), "requests.http lacks {missing:?}");
}

/// The targets of the Markdown links `[text](target)` of `text`, without their `#fragment`.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find(')') else { break };
        targets.push(rest[..end].to_owned());
        rest = &rest[end..];
    }
    targets
}

fn documents() -> Vec<PathBuf> {
    let mut documents = vec![root().join("README.md"), root().join("CHANGELOG.md")];
    for entry in std::fs::read_dir(root().join("docs")).expect("docs/") {
        let path = entry.expect("docs entry").path();
        if path.extension().is_some_and(|ext| ext == "md") {
            documents.push(path);
        }
    }
    documents
}

#[test]
fn documents_link_only_to_files_in_the_repository() {
    let mut broken = Vec::new();
    for document in documents() {
        let text = std::fs::read_to_string(&document).expect("document");
        let folder = document.parent().expect("folder");
        for target in link_targets(&text) {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let file = target.split('#').next().unwrap_or_default();
            if file.is_empty() {
                continue;
            }
            let resolved = folder.join(file);
            let inside = resolved
                .canonicalize()
                .is_ok_and(|path| path.starts_with(root().canonicalize().expect("root")));
            if !inside {
                broken.push(format!("{}: {target}", document.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links to nothing in the repository: {broken:?}"
    );
}

/// The GitHub-style anchor of a Markdown heading: lower case, spaces to `-`, punctuation
/// other than `-` and `_` dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors_of(document: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join(document)).expect("document");
    text.lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|heading| anchor(heading.trim_start_matches('#')))
        .collect()
}

#[test]
fn every_alarm_names_a_runbook_entry_that_exists() {
    let template =
        std::fs::read_to_string(root().join("infra/template.yaml")).expect("the template");
    let anchors = anchors_of("docs/operations.md");
    let named: Vec<&str> = template
        .split("docs/operations.md#")
        .skip(1)
        .map(|rest| {
            rest.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
                .next()
                .unwrap_or_default()
        })
        .collect();
    assert!(
        named.len() >= 9,
        "the alarms and the dashboard name their entries"
    );
    let missing: Vec<&&str> = named
        .iter()
        .filter(|name| !anchors.contains(**name))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/operations.md has no section {missing:?}"
    );
}

#[test]
fn links_into_the_guides_name_sections_that_exist() {
    let mut broken = Vec::new();
    for document in documents() {
        let text = std::fs::read_to_string(&document).expect("document");
        for target in link_targets(&text) {
            let Some((file, fragment)) = target.split_once('#') else {
                continue;
            };
            let file = if file.is_empty() {
                document.strip_prefix(root()).expect("inside").to_path_buf()
            } else {
                let resolved = document.parent().expect("folder").join(file);
                match resolved.canonicalize() {
                    Ok(path) => path
                        .strip_prefix(root().canonicalize().expect("root"))
                        .expect("inside")
                        .to_path_buf(),
                    Err(_) => continue,
                }
            };
            if file.extension().is_none_or(|ext| ext != "md") {
                continue;
            }
            if !anchors_of(file.to_str().expect("a text path")).contains(fragment) {
                broken.push(format!("{}: {target}", document.display()));
            }
        }
    }
    assert!(broken.is_empty(), "links to no section: {broken:?}");
}
