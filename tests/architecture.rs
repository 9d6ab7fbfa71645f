//! The layers of docs/architecture.md, checked: no module imports a module of a higher layer.
//!
//! Reads every `crate::<module>` path in `src/` (in `use` lines and inline paths) and fails,
//! naming the file and the import, when the module it names sits above the importing one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules by layer, bottom first. A module may import its own layer and below.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundation",
        &[
            "domain",
            "clock",
            "config",
            "werkzeug",
            "telemetry",
            "priority",
        ],
    ),
    ("store", &["store"]),
    (
        "core",
        &[
            "state",
            "passwords",
            "mail",
            "templates",
            "audit",
            "throttle",
            "user",
            "sessions",
            "csrf",
            "bearer",
            "handle",
            "testing",
        ],
    ),
    ("web", &["web"]),
    (
        "capabilities",
        &[
            "auth",
            "mfa",
            "passkeys",
            "account",
            "tokens",
            "admin",
            "posts",
            "ops",
            "import",
            "forward_auth",
            "client",
        ],
    ),
    ("application", &["app", "server", "openapi", "cli"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/web/extract.rs` → `web`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_owned())
}

/// Every module named after `crate::` in `text`, including `use crate::{a, b}` groups.
fn imported_modules(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or_default();
                for item in inner.split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        found.push(name);
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        }
    }
    found
}

#[test]
fn imports_only_point_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        let Some(own) = layer_of(&module) else {
            problems
                .entry(file.display().to_string())
                .or_default()
                .push(format!(
                    "module `{module}` is in no layer of tests/architecture.rs"
                ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        // Unit tests may reach anywhere.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        for imported in imported_modules(text) {
            match layer_of(&imported) {
                Some(layer) if layer > own => {
                    problems
                        .entry(file.display().to_string())
                        .or_default()
                        .push(format!(
                            "`{module}` ({}) imports `{imported}` ({})",
                            LAYERS[own].0, LAYERS[layer].0
                        ));
                }
                Some(_) => {}
                None if imported == "db_run" || imported == "Db" => {}
                None => problems
                    .entry(file.display().to_string())
                    .or_default()
                    .push(format!("`crate::{imported}` is in no layer")),
            }
        }
    }
    let report: Vec<String> = problems
        .iter()
        .flat_map(|(file, list)| list.iter().map(move |p| format!("{file}: {p}")))
        .collect();
    assert!(
        report.is_empty(),
        "{} import(s) point up a layer (see docs/architecture.md):\n{}",
        report.len(),
        report.join("\n")
    );
}

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Edges between modules: `edges(file, code)` names those one line of one file adds.
fn graph(src: &Path, edges: impl Fn(&Path, &str) -> Vec<(String, String)>) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph = Graph::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or_default();
            for (from, to) in edges(file, code) {
                if from != to {
                    graph.entry(from).or_default().insert(to);
                }
            }
        }
    }
    graph
}

/// A cycle in `graph`, as the list of its modules, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|start| visit(start, graph, &mut Vec::new(), &mut done))
}

/// Capabilities may call each other, and core modules each other, but never in a circle:
/// the top-level modules form no cycle.
#[test]
fn no_cycle_between_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src, |file, code| {
        let Some(from) = module_of(&src, file) else {
            return Vec::new();
        };
        imported_modules(code)
            .into_iter()
            .filter(|to| layer_of(to).is_some())
            .map(|to| (from.clone(), to))
            .collect()
    });
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "modules import each other in a circle: {}",
            cycle.join(" → ")
        );
    }
}

/// Inside a folder, the files beside `mod.rs` (which declares and assembles them) form no
/// cycle either: `admin/api.rs` and `admin/pages.rs` may both use `admin/mod.rs`, not each
/// other both ways.
#[test]
fn no_cycle_between_sibling_files() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src, |file, code| {
        let (Some(dir), Some(own)) = (file.parent(), file.file_stem().and_then(|s| s.to_str()))
        else {
            return Vec::new();
        };
        let folder = dir.file_name().and_then(|f| f.to_str()).unwrap_or_default();
        if dir == src || own == "mod" {
            return Vec::new();
        }
        siblings_named(code, folder)
            .into_iter()
            .filter(|sibling| dir.join(format!("{sibling}.rs")).exists())
            .map(|sibling| (format!("{folder}/{own}"), format!("{folder}/{sibling}")))
            .collect()
    });
    if let Some(cycle) = find_cycle(&graph) {
        panic!("files import each other in a circle: {}", cycle.join(" → "));
    }
}

/// The siblings a line names through `super::x`, `super::{x, y}` or `crate::<folder>::x`.
fn siblings_named(code: &str, folder: &str) -> Vec<String> {
    let long = format!("crate::{folder}::");
    let mut found = Vec::new();
    for prefix in ["super::", long.as_str()] {
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            rest = &rest[at + prefix.len()..];
            let names = match rest.strip_prefix('{') {
                Some(group) => group.split('}').next().unwrap_or_default(),
                None => rest,
            };
            for item in names.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != "self" {
                    found.push(name);
                }
                if !rest.starts_with('{') {
                    break;
                }
            }
        }
    }
    found
}

#[test]
fn cycles_are_found() {
    let mut graph = Graph::new();
    graph.entry("a".into()).or_default().insert("b".into());
    graph.entry("b".into()).or_default().insert("c".into());
    assert_eq!(find_cycle(&graph), None);
    graph.entry("c".into()).or_default().insert("a".into());
    assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
    assert_eq!(siblings_named("use super::pages::x;", "admin"), ["pages"]);
    assert_eq!(
        siblings_named("use super::{api, pages::y};", "admin"),
        ["api", "pages"]
    );
    assert_eq!(siblings_named("crate::admin::api::f()", "admin"), ["api"]);
}

#[test]
fn the_parser_reads_groups_and_paths() {
    let text = "use crate::{app::AppState, web};\nlet x = crate::store::users::find(db);";
    assert_eq!(imported_modules(text), ["app", "web", "store"]);
}
