//! No import circles: in the harness and the checkers, no module uses one that (through
//! others) uses it back. Read from the sources' `crate::` and `super::` paths (comments
//! and `#[cfg(test)]` modules left out), at two levels: the top-level modules (`cli`,
//! `run`, `nemesis`, ...: docs/architecture.md's stages) and every file. A module using
//! its own ancestor (`super::Thing` from a child) is the ordinary shape of a Rust module
//! and is not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// Circles known and not yet broken, by crate: each must stay within these modules (a
/// new member, or a new circle, fails the test). Remove an entry once it is broken.
const KNOWN: &[(&str, &[&str])] = &[(
    // The result types hold what the checkers compute (Margin, Harm, Stats), and the
    // checkers build results: breaking it moves those types, which the lease-hold model
    // (checks/lock.rs, checks/margin.rs) is being rewritten around.
    "checkers",
    &["checks", "checks::margin", "harm", "result", "stats"],
)];

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for krate in ["harness", "checkers"] {
        let modules = modules(&root.join(krate).join("src"));
        let edges = edges(&modules);
        let top: BTreeMap<Module, BTreeSet<Module>> = edges.iter().fold(
            BTreeMap::new(),
            |mut acc: BTreeMap<Module, BTreeSet<Module>>, (from, tos)| {
                for to in tos {
                    if let (Some(a), Some(b)) = (from.first(), to.first()) {
                        if a != b {
                            acc.entry(vec![a.clone()])
                                .or_default()
                                .insert(vec![b.clone()]);
                        }
                    }
                }
                acc
            },
        );
        let allowed: BTreeSet<String> = KNOWN
            .iter()
            .filter(|(k, _)| *k == krate)
            .flat_map(|(_, m)| m.iter().map(|s| s.to_string()))
            .collect();
        let mut seen_known = allowed.is_empty();
        for graph in [&top, &edges] {
            for circle in circles(graph) {
                let names: Vec<String> = circle.iter().map(|m| m.join("::")).collect();
                if names.iter().all(|n| allowed.contains(n)) {
                    seen_known = true;
                } else {
                    found.push(format!("{krate}: {}", names.join(" <-> ")));
                }
            }
        }
        // A known circle that is gone is taken off the list, so it cannot come back.
        assert!(
            seen_known,
            "{krate}'s known circle is broken: remove it from KNOWN"
        );
    }
    assert!(
        found.is_empty(),
        "import circles (break each, e.g. by moving what both sides use below them):\n  {}",
        found.join("\n  ")
    );
}

/// Every module of the crate whose sources are under `src`, with its code (comments and
/// test modules removed).
fn modules(src: &Path) -> BTreeMap<Module, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: Module = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            match module.last().map(String::as_str) {
                Some("main") if module.len() == 1 => continue,
                Some("mod" | "lib") => {
                    module.pop();
                }
                _ => {}
            }
            out.insert(module, code(&std::fs::read_to_string(&path).unwrap()));
        }
    }
    out
}

/// The file's code before its test module, without comments.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Which modules each module uses, ancestors left out.
fn edges(modules: &BTreeMap<Module, String>) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut out: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, code) in modules {
        let parent: Module = module[..module.len().saturating_sub(1)].to_vec();
        for (base, rest) in [("crate::", Vec::new()), ("super::", parent)] {
            let mut at = 0;
            while let Some(i) = code[at..].find(base) {
                let start = at + i;
                at = start + base.len();
                let before = code[..start].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                for path in paths(&code[at..], &rest) {
                    if let Some(target) = resolve(modules, &path) {
                        if target != *module && !module.starts_with(&target) {
                            out.entry(module.clone()).or_default().insert(target);
                        }
                    }
                }
            }
        }
    }
    out
}

/// The paths a use tree starting at `s` names, each prefixed by `prefix`: `a::b`,
/// `a::{b, c::d}`, `{a, b}`.
fn paths(s: &str, prefix: &Module) -> Vec<Module> {
    let mut path = prefix.clone();
    let mut rest = s;
    loop {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end > 0 {
            path.push(rest[..end].to_string());
        }
        rest = &rest[end..];
        if let Some(r) = rest.strip_prefix("::") {
            rest = r;
            continue;
        }
        break;
    }
    // `{` right after the path's `::` (never after a space: `impl crate::X {`).
    if !rest.starts_with('{') {
        return vec![path];
    }
    // A group: split at top-level commas.
    let mut out = Vec::new();
    let (mut depth, mut item_start) = (0, 1);
    for (i, c) in rest.char_indices() {
        match c {
            '{' => depth += 1,
            '}' | ',' if depth == 1 => {
                out.extend(paths(rest[item_start..i].trim(), &path));
                item_start = i + 1;
                if c == '}' {
                    break;
                }
            }
            '}' => depth -= 1,
            _ => {}
        }
    }
    out
}

/// The longest prefix of `path` that is a module.
fn resolve(modules: &BTreeMap<Module, String>, path: &Module) -> Option<Module> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains_key(p))
}

/// The strongly connected components of more than one module (Tarjan).
fn circles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<Module, usize>,
        low: BTreeMap<Module, usize>,
        stack: Vec<Module>,
        out: Vec<Vec<Module>>,
    }
    impl Walk<'_> {
        fn visit(&mut self, v: &Module) {
            let n = self.index.len();
            self.index.insert(v.clone(), n);
            self.low.insert(v.clone(), n);
            self.stack.push(v.clone());
            for w in self.graph.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    let done = w == *v;
                    component.push(w);
                    if done {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.out.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.out
}

/// The reader finds circles where there are some: a scan of two modules that use each
/// other, and of a child using its parent (not one).
#[test]
fn the_scan_sees_a_circle_and_ignores_a_parent() {
    let mut modules = BTreeMap::new();
    modules.insert(
        vec!["a".to_string()],
        "use crate::b::{X, c::Y};".to_string(),
    );
    modules.insert(
        vec!["b".to_string()],
        "fn f() { crate::a::g() }".to_string(),
    );
    modules.insert(
        vec!["b".to_string(), "c".to_string()],
        "use super::Z; use crate::b::W;".to_string(),
    );
    let e = edges(&modules);
    let b_c = vec!["b".to_string(), "c".to_string()];
    assert!(e[&vec!["a".to_string()]].contains(&b_c));
    assert!(!e.contains_key(&b_c), "{e:?}");
    let found = circles(&e);
    assert_eq!(
        found,
        vec![vec![vec!["a".to_string()], vec!["b".to_string()]]]
    );
}
