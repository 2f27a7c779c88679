//! The architecture, checked: three layers whose dependencies point one way (core ← adapters ←
//! lambda ← functions), a core that links no AWS, Lambda or HTTP-client crate, and no import
//! circle between the files of any crate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The crates (package names) `package` depends on through normal dependencies, transitively.
fn normal_dependencies(package: &str) -> BTreeSet<String> {
    let output = Command::new(env!("CARGO"))
        .current_dir(root())
        .args([
            "tree",
            "--locked",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}", "-p", package])
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_core_links_no_aws_lambda_or_http_client_crate() {
    let dependencies = normal_dependencies("flowline-core");
    let forbidden: Vec<&String> = dependencies
        .iter()
        .filter(|name| {
            name.starts_with("aws-")
                || name.starts_with("lambda_")
                || name.starts_with("flowline-")
                || [
                    "serde_dynamo",
                    "reqwest",
                    "hyper",
                    "rustls",
                    "tracing-subscriber",
                ]
                .contains(&name.as_str())
        })
        .filter(|name| name.as_str() != "flowline-core")
        .collect();
    assert!(
        forbidden.is_empty(),
        "flowline-core depends on {forbidden:?}"
    );
    // The check can fail: the adapters do link them.
    assert!(normal_dependencies("flowline-adapters").contains("aws-sdk-dynamodb"));
}

#[test]
fn dependencies_point_one_way() {
    let adapters = normal_dependencies("flowline-adapters");
    assert!(adapters.contains("flowline-core"));
    assert!(
        !adapters.contains("flowline-lambda") && !adapters.iter().any(|n| n.starts_with("lambda_")),
        "the adapters know nothing of Lambda: {adapters:?}"
    );
    let lambda = normal_dependencies("flowline-lambda");
    assert!(lambda.contains("flowline-adapters") && lambda.contains("flowline-core"));
    // Functions reach AWS only through flowline-lambda's composition root.
    for function in function_crates() {
        let manifest =
            std::fs::read_to_string(root().join("functions").join(&function).join("Cargo.toml"))
                .expect("a manifest");
        for line in manifest.lines() {
            let name = line.split(['.', ' ', '=']).next().unwrap_or_default();
            assert!(
                !name.starts_with("aws-") && name != "flowline-adapters" && name != "reqwest",
                "functions/{function} depends on {name} directly"
            );
        }
    }
}

/// The persistent local store (redb) is the local server's and the admin command's: no Lambda
/// function builds or links it (the adapters crate has it behind its feature `redb`).
#[test]
fn only_the_local_server_and_the_admin_command_link_the_local_store() {
    assert!(normal_dependencies("flowline").contains("redb"));
    assert!(normal_dependencies("flowline-admin").contains("redb"));
    for package in ["flowline-core", "flowline-lambda"]
        .into_iter()
        .map(str::to_owned)
        .chain(function_crates())
    {
        assert!(
            !normal_dependencies(&package).contains("redb"),
            "{package} links the local store"
        );
    }
}

fn function_crates() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("functions"))
        .expect("functions/")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// The `.rs` files of a crate's `src/`, as paths relative to it.
fn sources(src: &Path) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    let mut folders = vec![src.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("a folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                files.insert(path.strip_prefix(src).expect("inside").to_path_buf(), text);
            }
        }
    }
    files
}

/// The module path of a file: `callbacks/mod.rs` → `[callbacks]`, `lib.rs` → `[]`.
fn module_of(file: &Path) -> Vec<String> {
    let mut parts: Vec<String> = file
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Every path named after `crate::` or `super::` in `text` (unit tests excluded: they may use
/// anything), with `{a, b::c}` groups expanded, as module paths from the crate root.
fn referenced_paths(text: &str, module: &[String]) -> Vec<Vec<String>> {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut found = Vec::new();
    for (at, _) in text
        .match_indices("crate::")
        .chain(text.match_indices("super::"))
    {
        let before = text[..at].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let (base, rest) = if text[at..].starts_with("crate::") {
            (Vec::new(), &text[at + "crate::".len()..])
        } else {
            let mut base = module[..module.len().saturating_sub(1)].to_vec();
            let mut rest = &text[at + "super::".len()..];
            while let Some(more) = rest.strip_prefix("super::") {
                base.pop();
                rest = more;
            }
            (base, rest)
        };
        for tail in expand(rest) {
            let mut path = base.clone();
            path.extend(tail);
            found.push(path);
        }
    }
    found
}

/// `a::b::{c, d::e}` → `[a, b, c]`, `[a, b, d, e]`; `a::b;` → `[a, b]`; `{a, b}` → `[a]`, `[b]`.
fn expand(text: &str) -> Vec<Vec<String>> {
    if let Some(group) = text.strip_prefix('{') {
        let end = group.find('}').unwrap_or(group.len());
        return group[..end]
            .split(',')
            .flat_map(|item| expand(item.trim()))
            .collect();
    }
    let mut prefix = Vec::new();
    let mut rest = text;
    loop {
        let word: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !word.is_empty() {
            prefix.push(word.clone());
            rest = &rest[word.len()..];
        }
        if let Some(more) = rest.strip_prefix("::") {
            rest = more;
            if rest.starts_with('{') {
                return expand(rest)
                    .into_iter()
                    .map(|tail| {
                        let mut path = prefix.clone();
                        path.extend(tail);
                        path
                    })
                    .collect();
            }
            continue;
        }
        return vec![prefix];
    }
}

/// The file-level import graph of a crate: which files name which.
fn import_graph(src: &Path) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let files = sources(src);
    let modules: BTreeMap<Vec<String>, PathBuf> = files
        .keys()
        .map(|file| (module_of(file), file.clone()))
        .collect();
    let mut graph = BTreeMap::new();
    for (file, text) in &files {
        let mut targets = BTreeSet::new();
        for path in referenced_paths(text, &module_of(file)) {
            // The longest prefix that is a module file is the file the path lives in.
            let target = (1..=path.len())
                .rev()
                .find_map(|length| modules.get(&path[..length]));
            if let Some(target) = target.filter(|target| *target != file) {
                targets.insert(target.clone());
            }
        }
        graph.insert(file.clone(), targets);
    }
    graph
}

/// A cycle in `graph`, if any (depth-first search for a back edge).
fn find_cycle(graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Option<Vec<PathBuf>> {
    fn visit(
        node: &PathBuf,
        graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        stack: &mut Vec<PathBuf>,
        done: &mut BTreeSet<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        if let Some(start) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[start..].to_vec();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_crate_has_an_import_circle() {
    let mut crates = vec![
        root().join("src"),
        root().join("shared/src"),
        root().join("adapters/src"),
        root().join("lambda/src"),
        root().join("admin/src"),
    ];
    crates.extend(
        function_crates()
            .iter()
            .map(|f| root().join("functions").join(f).join("src")),
    );
    for src in crates {
        let graph = import_graph(&src);
        assert!(!graph.is_empty(), "{} has sources", src.display());
        if let Some(cycle) = find_cycle(&graph) {
            panic!("import circle in {}: {cycle:?}", src.display());
        }
    }
}

#[test]
fn the_circle_finder_finds_circles() {
    let graph: BTreeMap<PathBuf, BTreeSet<PathBuf>> = [
        ("app.rs", vec!["auth.rs"]),
        ("auth.rs", vec!["http.rs"]),
        ("http.rs", vec!["app.rs"]),
        ("ids.rs", vec![]),
    ]
    .into_iter()
    .map(|(file, to)| (file.into(), to.into_iter().map(PathBuf::from).collect()))
    .collect();
    let cycle = find_cycle(&graph).expect("the circle is found");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4);

    // And the reader sees imports however they are written.
    let module = vec!["callbacks".to_owned(), "dispatch".to_owned()];
    let paths = referenced_paths(
        "use crate::app::App;\nuse super::{model::Callback, store};\nlet x = crate::ids::new_id();",
        &module,
    );
    let expected: Vec<Vec<&str>> = vec![
        vec!["app", "App"],
        vec!["ids", "new_id"],
        vec!["callbacks", "model", "Callback"],
        vec!["callbacks", "store"],
    ];
    assert_eq!(paths, expected);
}

/// Tests move the application's clock or wait for a condition (`common::eventually`,
/// `Receiver::wait_for`); none sleeps hoping something happened meanwhile, and none asserts how
/// long something took on the wall clock (that is for benchmarks; a test on tokio's paused
/// clock measures virtual time, which is exact). Only the shared helpers in tests/common may
/// sleep: the polling loop, the test clock, a receiver that answers slowly on purpose.
#[test]
fn the_suite_never_sleeps_to_synchronise_nor_times_itself() {
    // Spelled in pieces so this file does not match itself.
    let forbidden = [
        ["time::", "sleep("].concat(),
        ["thread::", "sleep("].concat(),
        ["Instant::", "now()"].concat(),
        [".elap", "sed()"].concat(),
    ];
    let mut offences = Vec::new();
    for entry in std::fs::read_dir(root().join("tests")).expect("tests/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|ext| ext != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a test file");
        // On tokio's paused clock, sleeps, instants and elapsed times are virtual: exact, and
        // not the wall clock's (a sleep there stands for latency, and costs nothing).
        let virtual_time = text.contains(&["start_paused", " = true"].concat());
        for (number, line) in text.lines().enumerate() {
            for pattern in forbidden
                .iter()
                .filter(|pattern| !virtual_time || pattern.starts_with("thread"))
            {
                if line.contains(pattern.as_str()) {
                    offences.push(format!(
                        "{}:{}: {}",
                        path.display(),
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(offences.is_empty(), "{offences:#?}");
}
