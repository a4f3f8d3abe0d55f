//! The Studio's modules depend one way only (ARCHITECTURE.md, "ui/"): this
//! reads every path in `ui/src` (`crate::x::y`, `super::`, `self::` and a
//! child module's name) and every `self.method(` call of a `Studio` method
//! defined in another file (such a call needs no path: `Studio`'s actions
//! are spread over `impl Studio` blocks in many files), and fails on a
//! circle, between top-level modules (`studio`, `canvas`, `panels`,
//! `viewport`, ...) and between files.
//!
//! `cargo test -p unmask-studio --test module_layers -- --nocapture` prints
//! the edges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`crate::studio::runs`) of every source file of the library.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read ui/src") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    let mut map = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(src).expect("under src").with_extension("");
        let mut parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
        // the binary is its own crate: it reaches the library as `unmask_studio::`
        if parts == ["main"] {
            continue;
        }
        if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
            parts.pop();
        }
        let name = std::iter::once("crate".to_string()).chain(parts).collect::<Vec<_>>().join("::");
        map.insert(name, f);
    }
    map
}

/// Every `a::b::c` chain in the code (comments dropped).
fn paths(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let b = code.as_bytes();
        let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        let mut i = 0;
        while i < b.len() {
            if ident(b[i]) && (i == 0 || (!ident(b[i - 1]) && b[i - 1] != b':')) {
                let mut chain = Vec::new();
                let mut j = i;
                loop {
                    let s = j;
                    while j < b.len() && ident(b[j]) {
                        j += 1;
                    }
                    chain.push(code[s..j].to_string());
                    if j + 2 < b.len() && &b[j..j + 2] == b"::" && ident(b[j + 2]) {
                        j += 2;
                    } else {
                        break;
                    }
                }
                // `super::{A, B}` and `state::*` name a module too
                let group = b.get(j..j + 2) == Some(b"::");
                if chain.len() > 1 || group {
                    out.push(chain);
                }
                i = j.max(i + 1);
            } else {
                i += 1;
            }
        }
    }
    out
}

/// The module a path names (its longest known prefix), if it is one of ours.
fn resolve(from: &str, chain: &[String], known: &BTreeMap<String, PathBuf>) -> Option<String> {
    let mut base: Vec<String> = from.split("::").map(String::from).collect();
    let mut rest = chain;
    match chain[0].as_str() {
        "crate" => {
            base = vec!["crate".into()];
            rest = &chain[1..];
        }
        "self" => rest = &chain[1..],
        "super" => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        // a child module by its name (`use state::Mode`), else another crate
        first if known.contains_key(&format!("{from}::{first}")) => {}
        _ => return None,
    }
    let mut best = base.join("::");
    for seg in rest {
        base.push(seg.clone());
        let m = base.join("::");
        if !known.contains_key(&m) {
            break;
        }
        best = m;
    }
    (best != from).then_some(best)
}

/// Names of the methods a file defines in its `impl Studio` blocks.
fn studio_methods(text: &str) -> Vec<String> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("impl Studio {") {
            inside = true;
        } else if line == "}" {
            inside = false;
        } else if let Some(l) = line.strip_prefix("    ").filter(|l| inside && !l.starts_with(' ')) {
            let l = l.trim_start_matches("pub(crate) ").trim_start_matches("pub(super) ").trim_start_matches("pub ");
            if let Some(rest) = l.strip_prefix("fn ") {
                out.push(rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect());
            }
        }
    }
    out
}

/// The text of a file's `impl Studio` blocks: only there is `self` a Studio
/// (a `Document` method may share a name with a Studio action).
fn studio_impls(text: &str) -> String {
    let mut inside = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("impl Studio {") {
            inside = true;
        } else if line == "}" {
            inside = false;
        } else if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Names of the methods called on `self` (a Studio).
fn self_calls(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let text = &studio_impls(text);
    for (i, _) in text.match_indices("self.") {
        let name: String = text[i + 5..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if text[i + 5 + name.len()..].starts_with('(') {
            out.insert(name);
        }
    }
    out
}

fn top(m: &str) -> String {
    m.split("::").take(2).collect::<Vec<_>>().join("::")
}

/// A circle in `edges`, if any, as the modules along it.
fn circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(n: &str, edges: &BTreeMap<String, BTreeSet<String>>, state: &mut BTreeMap<String, u8>, stack: &mut Vec<String>) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut c = stack[at..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(m, edges, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if state.get(n).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(n, edges, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn ui_modules_depend_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let known = modules(&src);
    assert!(known.contains_key("crate::studio"), "modules found: {:?}", known.keys());
    let texts: BTreeMap<&String, String> = known.iter().map(|(m, f)| (m, std::fs::read_to_string(f).expect("read source"))).collect();
    let mut defined: BTreeMap<String, String> = BTreeMap::new();
    for (m, text) in &texts {
        for name in studio_methods(text) {
            if let Some(other) = defined.insert(name.clone(), m.to_string()) {
                panic!("Studio::{name} is defined in {other} and {m}");
            }
        }
    }
    let mut files: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut tops: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, text) in &texts {
        let m = *m;
        let named = paths(text).into_iter().filter_map(|chain| resolve(m, &chain, &known));
        let called = self_calls(text).into_iter().filter_map(|n| defined.get(&n).filter(|d| *d != m).cloned());
        for to in named.chain(called) {
            // lib.rs declares and re-exports every module: it is the root, not a layer
            if m == "crate" || to == "crate" {
                continue;
            }
            files.entry(m.clone()).or_default().insert(to.clone());
            if top(m) != top(&to) {
                tops.entry(top(m)).or_default().insert(top(&to));
            }
        }
    }
    for (from, to) in &files {
        println!("{from} -> {}", to.iter().cloned().collect::<Vec<_>>().join(", "));
    }
    if let Some(c) = circle(&tops) {
        panic!("modules depend on each other in a circle: {}", c.join(" -> "));
    }
    if let Some(c) = circle(&files) {
        panic!("files depend on each other in a circle: {}", c.join(" -> "));
    }
}

#[test]
fn the_check_finds_a_circle() {
    let mut e: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    e.entry("crate::a".into()).or_default().insert("crate::b".into());
    e.entry("crate::b".into()).or_default().insert("crate::c".into());
    assert_eq!(circle(&e), None);
    e.entry("crate::c".into()).or_default().insert("crate::a".into());
    assert_eq!(circle(&e).map(|c| c.len()), Some(4));
    let known: BTreeMap<String, PathBuf> =
        ["crate", "crate::studio", "crate::studio::state", "crate::canvas"].iter().map(|m| (m.to_string(), PathBuf::new())).collect();
    let p = |s: &str| paths(s).into_iter().next().expect("a path");
    assert_eq!(resolve("crate::canvas", &p("use crate::studio::{Studio, Tool};"), &known).as_deref(), Some("crate::studio"));
    assert_eq!(resolve("crate::studio::state", &p("use super::Studio;"), &known).as_deref(), Some("crate::studio"));
    assert_eq!(resolve("crate::studio", &p("pub use state::Mode;"), &known).as_deref(), Some("crate::studio::state"));
    assert_eq!(resolve("crate::studio", &p("pub use state::{Mode, Tool};"), &known).as_deref(), Some("crate::studio::state"));
    assert_eq!(resolve("crate::studio::state", &p("use super::{Mode, Studio};"), &known).as_deref(), Some("crate::studio"));
    assert_eq!(resolve("crate::canvas", &p("let x = egui::Rect::NOTHING;"), &known), None);
    let code = "impl Studio {\n    pub fn start(&mut self) {\n        self.refuse(\"x\");\n        self.view.fit(s);\n    }\n\n    pub(crate) fn refuse(&mut self) {}\n}\n";
    assert_eq!(studio_methods(code), ["start", "refuse"]);
    assert_eq!(self_calls(code).into_iter().collect::<Vec<_>>(), ["refuse"]);
    // `self` in another type's impl is no Studio: its calls are not Studio's
    let other = "impl Document {\n    pub fn delete(&mut self) {\n        self.refuse(\"x\");\n    }\n}\n";
    assert!(self_calls(other).is_empty());
}
