//! The layers of docs/architecture.md, checked: no module imports a module of a higher layer.
//!
//! Reads every `crate::<module>` path in `src/` (in `use` lines and inline paths) and fails,
//! naming the file and the import, when the module it names sits above the importing one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Top-level modules by layer, bottom first. A module may import its own layer and below.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundation",
        &["domain", "clock", "config", "werkzeug", "telemetry"],
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
            "auth", "mfa", "account", "tokens", "admin", "posts", "ops", "import",
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

#[test]
fn the_parser_reads_groups_and_paths() {
    let text = "use crate::{app::AppState, web};\nlet x = crate::store::users::find(db);";
    assert_eq!(imported_modules(text), ["app", "web", "store"]);
}
