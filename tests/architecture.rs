//! The crate's shape: data flows one way through the stages. Every top-level module sits in a
//! layer, and a module imports (through `crate::` or `super::` paths, braces expanded) only from
//! layers below its own; no module reaches one that reaches back to it; and the streaming
//! pipeline never calls an offline job.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

/// The top-level modules from the bottom up. A module may import only from layers before its own,
/// never from its own layer or one after it.
const LAYERS: &[&[&str]] = &[
    &["error", "scan", "allocator"],
    &["sensor", "frames"],
    &["io", "registration", "graph"],
    &["sim", "projection", "odometry", "metrics"],
    &["ground_truth"],
    &["overlapnet"],
    &["loops"],
    &["saved_map", "viz"],
    &["perception"],
    &["pipeline"],
    &["jobs"],
    &["cli"],
];

/// Every module of `src/` (a file, or a folder's `mod.rs`) with its source. `main.rs` is left
/// out: it is the binary, which imports the library by name.
fn modules(root: &Path) -> BTreeMap<Module, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && path != root.join("main.rs") {
                let rel = path.strip_prefix(root).unwrap().with_extension("");
                let mut module: Module = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
                if ["mod", "lib"].contains(&module.last().unwrap().as_str()) {
                    module.pop();
                }
                out.insert(module, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out
}

/// `source` without its comments: a doc link names a module without importing it.
fn code_of(source: &str) -> String {
    source
        .lines()
        .map(|line| line.split_once("//").map_or(line, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a `crate::`/`super::` path with braces stands for: `crate::{a::{b, c}, d}` gives
/// `crate::a::b`, `crate::a::c` and `crate::d`. `rest` starts just after the leading `crate::`
/// or `super::`.
fn expand(prefix: &str, rest: &str) -> Vec<String> {
    let rest = rest.trim_start();
    if let Some(list) = rest.strip_prefix('{') {
        return top_level_items(list)
            .into_iter()
            .flat_map(|item| expand(prefix, item))
            .collect();
    }
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(rest.len());
    let (path, after) = (&rest[..end], &rest[end..]);
    let joined = format!("{prefix}::{}", path.trim_end_matches(':'));
    if path.ends_with("::") && after.starts_with('{') {
        expand(&joined, after)
    } else {
        vec![joined]
    }
}

/// The comma-separated items of a braced list, `list` starting just after its `{`.
fn top_level_items(list: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0usize, 0usize, Vec::new());
    for (i, c) in list.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&list[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
}

/// `crate::a::b::Item` and `super::b::Item` paths in `source`, braces expanded.
fn paths(source: &str) -> Vec<Vec<String>> {
    let code = code_of(source);
    let mut found = Vec::new();
    for head in ["crate::", "super::"] {
        for (start, _) in code.match_indices(head) {
            let before = code[..start].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let prefix = head.trim_end_matches(':');
            for path in expand(prefix, &code[start + head.len()..]) {
                found.push(path.split("::").filter(|s| !s.is_empty()).map(str::to_string).collect());
            }
        }
    }
    found
}

/// The deepest module `path`, read from inside `from`, names.
fn resolve(from: &Module, path: &[String], known: &BTreeMap<Module, String>) -> Option<Module> {
    let (mut base, mut parts) = match path.first().map(String::as_str) {
        Some("crate") => (Vec::new(), &path[1..]),
        Some("super") => (from[..from.len().saturating_sub(1)].to_vec(), &path[1..]),
        _ => return None,
    };
    while parts.first().is_some_and(|p| p == "super") {
        base.pop();
        parts = &parts[1..];
    }
    (0..=parts.len())
        .map(|i| base.iter().cloned().chain(parts[..i].iter().cloned()).collect())
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

/// The import graph of `src/`.
fn import_graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let known = modules(&src);
    assert!(known.len() > 100, "found {} modules", known.len());
    known.iter().map(|(m, s)| (m.clone(), imports(m, s, &known))).collect()
}

fn module(path: &str) -> Module {
    path.split("::").map(str::to_string).collect()
}

/// The layer of a module's top-level module, or `None` for the crate root.
fn layer(m: &Module) -> Option<usize> {
    let top = m.first()?;
    let found = LAYERS.iter().position(|l| l.contains(&top.as_str()));
    Some(found.unwrap_or_else(|| panic!("top-level module `{top}` is in no layer of LAYERS")))
}

#[test]
fn the_parser_sees_braced_and_nested_imports() {
    let found = paths("use crate::{io::{kitti, ply::read}, scan::Scan};\nuse super::b::C; // crate::x");
    let found: BTreeSet<String> = found.iter().map(|p| p.join("::")).collect();
    let want: BTreeSet<String> = [
        "crate::io::kitti",
        "crate::io::ply::read",
        "crate::scan::Scan",
        "super::b::C",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(found, want);
    let graph = import_graph();
    assert!(graph[&module("pipeline::run")].contains(&module("pipeline::config")));
    assert!(graph[&module("perception::liif::stage")].contains(&module("perception::liif::score")));
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = import_graph();
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

#[test]
fn every_import_runs_down_the_layers() {
    let graph = import_graph();
    let mut upward = Vec::new();
    for (m, out) in &graph {
        for t in out {
            if let (Some(from), Some(to)) = (layer(m), layer(t))
                && m.first() != t.first()
                && to >= from
            {
                upward.push(format!(
                    "{} (layer {from}) -> {} (layer {to})",
                    m.join("::"),
                    t.join("::")
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that do not run down the layers:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_pipeline_calls_no_job() {
    let graph = import_graph();
    let calls: Vec<String> = graph
        .iter()
        .filter(|(m, _)| m.first().is_some_and(|t| t == "pipeline"))
        .flat_map(|(m, out)| {
            out.iter()
                .filter(|t| t.first().is_some_and(|t| t == "jobs" || t == "cli"))
                .map(move |t| format!("{} -> {}", m.join("::"), t.join("::")))
        })
        .collect();
    assert!(
        calls.is_empty(),
        "the pipeline imports offline jobs:\n{}",
        calls.join("\n")
    );
}
