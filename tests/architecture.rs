//! The crate's modules form no import circle: data flows one way through the stages, so a
//! module never reaches (through `crate::` or `super::` paths) one that reaches back to it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

/// Every module of `src/` (a file, or a folder's `mod.rs`) with its source.
fn modules(root: &Path) -> BTreeMap<Module, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).unwrap().with_extension("");
                let mut module: Module = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
                if ["mod", "lib", "main"].contains(&module.last().unwrap().as_str()) {
                    module.pop();
                }
                out.insert(module, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out
}

/// `crate::a::b::Item` and `super::b::Item` paths in `source`.
fn paths(source: &str) -> Vec<Vec<&str>> {
    let mut found = Vec::new();
    for (start, _) in source.match_indices("crate::").chain(source.match_indices("super::")) {
        let before = source[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &source[start..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        found.push(rest[..end].split("::").filter(|s| !s.is_empty()).collect());
    }
    found
}

/// The deepest module `path`, read from inside `from`, names.
fn resolve(from: &Module, path: &[&str], known: &BTreeMap<Module, String>) -> Option<Module> {
    let (mut base, mut parts) = match path.first() {
        Some(&"crate") => (Vec::new(), &path[1..]),
        Some(&"super") => (from[..from.len().saturating_sub(1)].to_vec(), &path[1..]),
        _ => return None,
    };
    while parts.first() == Some(&"super") {
        base.pop();
        parts = &parts[1..];
    }
    (0..=parts.len())
        .map(|i| {
            base.iter()
                .cloned()
                .chain(parts[..i].iter().map(|s| s.to_string()))
                .collect()
        })
        .rfind(|m: &Module| known.contains_key(m))
}

/// Modules `from` imports, leaving out its own ancestors (a folder's `mod.rs` re-exporting its
/// children is not a circle).
fn imports(from: &Module, source: &str, known: &BTreeMap<Module, String>) -> BTreeSet<Module> {
    paths(source)
        .iter()
        .filter_map(|p| resolve(from, p, known))
        .filter(|m| m != from && !from.starts_with(m))
        .collect()
}

/// Whether `target` can be reached from `start` in `graph`.
fn reaches(graph: &BTreeMap<Module, BTreeSet<Module>>, start: &Module, target: &Module) -> bool {
    let (mut seen, mut todo) = (BTreeSet::new(), vec![start.clone()]);
    while let Some(m) = todo.pop() {
        if &m == target {
            return true;
        }
        if seen.insert(m.clone()) {
            todo.extend(graph[&m].iter().cloned());
        }
    }
    false
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let known = modules(&src);
    assert!(known.len() > 100, "found {} modules", known.len());
    let graph: BTreeMap<Module, BTreeSet<Module>> =
        known.iter().map(|(m, s)| (m.clone(), imports(m, s, &known))).collect();
    let pipeline_run = vec!["pipeline".to_string(), "run".to_string()];
    assert!(graph[&pipeline_run].contains(&vec!["pipeline".to_string(), "config".to_string()]));
    let mut circles = Vec::new();
    for (m, out) in &graph {
        for t in out.iter().filter(|t| reaches(&graph, t, m)) {
            circles.push(format!(
                "{} -> {} -> ... -> {}",
                m.join("::"),
                t.join("::"),
                m.join("::")
            ));
        }
    }
    assert!(circles.is_empty(), "import circles:\n{}", circles.join("\n"));
}
