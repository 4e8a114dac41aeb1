//! The provisioner's structure, checked against the layer table beside it (`layers.txt`): every
//! module is in a layer, no module imports from a higher layer, and no modules import each other
//! in a cycle, even within a layer. A module's references to others are its `crate::` paths
//! (in `use` trees and inline); its own subtree (`super::`, its `mod` children, its ancestors) does
//! not count, nor does a `#[cfg(test)] mod tests` block (tests may reach anywhere).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path as the table writes it: `aws`, `resources::network::vpc`; `lib` for the crate
/// root, `main` for the binary.
type Module = String;

/// One reference from a module to another: the line it is on, 1-based.
#[derive(Debug, Clone)]
struct Reference {
    from: Module,
    to: Module,
    line: usize,
}

#[test]
fn layers_only_point_down_and_no_modules_import_each_other_in_a_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let table_path = root.join("layers.txt");
    let table_text = std::fs::read_to_string(&table_path).expect("provisioner/layers.txt");
    let table = Layers::parse(&table_text);
    let modules = modules_under(&src);
    let known: BTreeSet<Module> = modules.keys().cloned().collect();
    let reexports = root_reexports(&std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs"), &known);

    let mut problems = Vec::new();
    for entry in &table.entries {
        if !known.iter().any(|m| m == &entry.0 || m.starts_with(&format!("{}::", entry.0))) {
            problems.push(format!(
                "layers.txt line {} names `{}`, which is no module of provisioner/src: remove the entry, \
                 or create the module",
                entry.2, entry.0
            ));
        }
    }
    for (module, file) in &modules {
        if table.layer_of(module).is_none() {
            problems.push(format!(
                "{} (module `{module}`) is in no layer: add it to provisioner/layers.txt",
                rel(root, file)
            ));
        }
    }

    let mut references = Vec::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).expect("read module");
        references.extend(references_of(module, &text, &known, &reexports));
    }

    for r in &references {
        let (Some(from), Some(to)) = (table.layer_of(&r.from), table.layer_of(&r.to)) else { continue };
        if from < to {
            problems.push(format!(
                "{}:{}: `{}` (layer {from}, {}) imports `{}` ({}, layer {to}, {}), a higher layer: move `{}` down \
                 to layer {from} or invert the dependency",
                rel(root, &modules[&r.from]),
                r.line,
                r.from,
                table.names[from],
                r.to,
                rel(root, &modules[&r.to]),
                table.names[to],
                r.to,
            ));
        }
    }

    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in &references {
        edges.entry(&r.from).or_default().insert(&r.to);
    }
    for component in strongly_connected(&known, &edges) {
        let members: BTreeSet<&str> = component.iter().copied().collect();
        let cycle = one_cycle(component[0], &members, &edges);
        let mut lines = Vec::new();
        for pair in cycle.windows(2) {
            let r = references.iter().find(|r| r.from == pair[0] && r.to == pair[1]).expect("edge");
            lines.push(format!("  {} -> {} ({}:{})", r.from, r.to, rel(root, &modules[&r.from]), r.line));
        }
        let mut inside = Vec::new();
        for r in references.iter().filter(|r| members.contains(r.from.as_str()) && members.contains(r.to.as_str())) {
            if !inside.iter().any(|(from, to, _): &(&str, &str, String)| *from == r.from && *to == r.to) {
                inside.push((r.from.as_str(), r.to.as_str(), format!("{}:{}", rel(root, &modules[&r.from]), r.line)));
            }
        }
        inside.sort();
        let inside: Vec<String> = inside.iter().map(|(from, to, at)| format!("  {from} -> {to} ({at})")).collect();
        problems.push(format!(
            "a cycle of {} modules ({}); one loop through it:\n{}\nevery import inside it:\n{}\nbreak it: move \
             what the lower module needs down to it, or invert the dependency",
            members.len(),
            members.iter().copied().collect::<Vec<_>>().join(", "),
            lines.join("\n"),
            inside.join("\n")
        ));
    }

    assert!(
        problems.is_empty(),
        "{} structure problem(s) (the layers are in provisioner/layers.txt):\n\n{}\n",
        problems.len(),
        problems.join("\n\n")
    );
}

/// The layer table: layer names lowest first, and which module (with its subtree) is in which.
struct Layers {
    names: Vec<String>,
    /// (module, layer, line of the table).
    entries: Vec<(Module, usize, usize)>,
}

impl Layers {
    /// `NAME: module module …` per layer, lowest first; an indented line continues the layer above;
    /// `#` starts a comment.
    fn parse(text: &str) -> Self {
        let mut layers = Self { names: Vec::new(), entries: Vec::new() };
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or_default();
            if line.trim().is_empty() {
                continue;
            }
            let modules = if line.starts_with(char::is_whitespace) {
                assert!(!layers.names.is_empty(), "layers.txt line {}: a continuation before any layer", i + 1);
                line
            } else {
                let (name, rest) = line
                    .split_once(':')
                    .unwrap_or_else(|| panic!("layers.txt line {}: expected `NAME: module …`", i + 1));
                layers.names.push(name.trim().to_owned());
                rest
            };
            for module in modules.split_whitespace() {
                if let Some(other) = layers.entries.iter().find(|e| e.0 == module) {
                    panic!("layers.txt line {}: `{module}` is already on line {}", i + 1, other.2);
                }
                layers.entries.push((module.to_owned(), layers.names.len() - 1, i + 1));
            }
        }
        layers
    }

    /// The layer of `module`: that of its own entry, else its nearest listed ancestor's.
    fn layer_of(&self, module: &str) -> Option<usize> {
        let mut path = module;
        loop {
            if let Some(e) = self.entries.iter().find(|e| e.0 == path) {
                return Some(e.1);
            }
            path = &path[..path.rfind("::")?];
        }
    }
}

/// Every module file under `src`, by module path.
fn modules_under(src: &Path) -> BTreeMap<Module, PathBuf> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).expect("under src").with_extension("");
                let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
                if parts.len() > 1 && parts.last().is_some_and(|p| p == "mod") {
                    parts.pop();
                }
                out.insert(parts.join("::"), path);
            }
        }
    }
    out
}

/// `pub use a::B;` at the crate root: `crate::B` is a reference to `a`.
fn root_reexports(lib: &str, known: &BTreeSet<Module>) -> BTreeMap<String, Module> {
    let code = code_only(lib);
    let mut out = BTreeMap::new();
    for (_, path) in use_paths(&code) {
        if let Some(rest) = path.strip_prefix("pub ") {
            let segments: Vec<&str> = rest.split("::").collect();
            if let (Some(target), Some(last)) = (resolve(&segments, known), segments.last()) {
                out.insert((*last).to_owned(), target);
            }
        }
    }
    out
}

/// The modules `module` (whose source is `text`) refers to outside its own subtree.
fn references_of(
    module: &str,
    text: &str,
    known: &BTreeSet<Module>,
    reexports: &BTreeMap<String, Module>,
) -> Vec<Reference> {
    let code = without_test_modules(&code_only(text));
    let crate_name = if module == "main" { "provisioner" } else { "crate" };
    let mut paths: Vec<(usize, Vec<String>)> = Vec::new();
    for (at, path) in use_paths(&code) {
        let path = path.trim_start_matches("pub ");
        let segments: Vec<String> = path.split("::").map(str::to_owned).collect();
        paths.push((at, segments));
    }
    // Inline paths: `crate::a::b` anywhere (those in `use` trees are found again: no matter).
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(found) = code[from..].find(&format!("{crate_name}::")) {
        let at = from + found;
        from = at + crate_name.len();
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_' || bytes[at - 1] == b'$') {
            continue;
        }
        let end = code[at..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .map_or(code.len(), |n| at + n);
        let segments: Vec<String> = code[at..end].split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect();
        paths.push((at, segments));
    }
    let mut out = Vec::new();
    for (at, segments) in paths {
        let Some(target) = absolute(module, &segments, crate_name)
            .and_then(|abs| {
                let parts: Vec<&str> = abs.iter().map(String::as_str).collect();
                resolve(&parts, known).or_else(|| parts.first().and_then(|first| reexports.get(*first).cloned()))
            })
            .or_else(|| (segments.first().map(String::as_str) == Some(crate_name)).then(|| "lib".to_owned()))
        else {
            continue;
        };
        // The binary's `provisioner::x` for a root item is the library's edge, not an import.
        if !(within_subtree(module, &target) || module == "main" && target == "lib") {
            let line = code[..at].matches('\n').count() + 1;
            if !out.iter().any(|r: &Reference| r.to == target && r.line == line) {
                out.push(Reference { from: module.to_owned(), to: target, line });
            }
        }
    }
    out.sort_by_key(|r| r.line);
    out
}

/// `segments` as a path from the crate root, when it leaves `module`'s top-level module: a `crate::`
/// path, or `super::` climbing out of it. Relative paths stay within the module.
fn absolute(module: &str, segments: &[String], crate_name: &str) -> Option<Vec<String>> {
    let first = segments.first()?;
    if first == crate_name {
        return Some(segments[1..].to_vec());
    }
    if first != "super" {
        return None;
    }
    let mut base: Vec<String> =
        if module == "lib" { Vec::new() } else { module.split("::").map(str::to_owned).collect() };
    let mut rest = segments;
    while rest.first().is_some_and(|s| s == "super") {
        base.pop()?;
        rest = &rest[1..];
    }
    if base.is_empty() { Some(rest.to_vec()) } else { None }
}

/// The longest known module `parts` starts with (`lib` never: a root item has no module of its own).
fn resolve<S: AsRef<str>>(parts: &[S], known: &BTreeSet<Module>) -> Option<Module> {
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].iter().map(AsRef::as_ref).collect::<Vec<_>>().join("::"))
        .find(|m| known.contains(m) && m != "lib" && m != "main")
}

/// True when `a` and `b` are one module, or one is inside the other (the crate root declares
/// them all, and a reference to it is one to the root's own items).
fn within_subtree(a: &str, b: &str) -> bool {
    a == b || a == "lib" || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
}

/// Every path a `use` item imports (`use crate::{a, b::{c, d as e}}` gives `crate::a`,
/// `crate::b::c`, `crate::b::d`), with where the item starts; `pub use` paths start with `pub `.
fn use_paths(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(found) = code[from..].find("use ") {
        let at = from + found;
        from = at + 4;
        let before = code[..at].trim_end_matches(' ');
        let word_start = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let item_start = before.is_empty()
            || before.ends_with(['\n', ';', '{', '}', ']'])
            || before.ends_with("pub")
            || before.ends_with(')');
        if !word_start || !item_start {
            continue;
        }
        let public = before.ends_with("pub") || before.ends_with(')');
        let Some(end) = code[at..].find(';').map(|n| at + n) else { break };
        // `a as b` names `a`; then whitespace goes.
        let mut words = code[at + 4..end].split_whitespace();
        let mut tree = String::new();
        while let Some(word) = words.next() {
            if word == "as" {
                let alias = words.next().unwrap_or_default();
                tree.push_str(alias.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_'));
            } else {
                tree.push_str(word);
            }
        }
        for path in expand(&tree) {
            out.push((at, if public { format!("pub {path}") } else { path }));
        }
    }
    out
}

/// The paths of a use tree without whitespace: `a::{b,c::d as e}` gives `a::b`, `a::c::d`.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim_start_matches("::");
    let Some(open) = tree.find('{') else {
        return vec![tree.trim_end_matches("::self").trim_end_matches("::*").to_owned()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    let mut parts = Vec::new();
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        for path in expand(part) {
            out.push(if path == "self" { prefix.trim_end_matches("::").to_owned() } else { format!("{prefix}{path}") });
        }
    }
    out
}

/// `text` with comments, string and character literals blanked (newlines kept, so lines count).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_'))
        {
            let mut hashes = 0;
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let closing: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            let closing: Vec<char> = closing.chars().collect();
            let mut k = j + 1;
            while k < chars.len() && chars[k..].iter().take(closing.len()).ne(closing.iter()) {
                k += 1;
            }
            let end = (k + closing.len()).min(chars.len());
            for &ch in &chars[i..end] {
                out.push(blank(ch));
            }
            i = end;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{1F600}'), else a lifetime or label.
            let end = if next == Some('\\') {
                chars[i + 2..].iter().position(|&ch| ch == '\'').map(|n| i + 2 + n)
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    for _ in i..=end {
                        out.push(' ');
                    }
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// `code` without its `#[cfg(test)] mod NAME { … }` blocks (newlines kept).
fn without_test_modules(code: &str) -> String {
    let mut out = code.to_owned();
    let mut from = 0;
    while let Some(found) = out[from..].find("#[cfg(test)]") {
        let at = from + found;
        from = at + 1;
        let rest = out[at + "#[cfg(test)]".len()..].trim_start();
        let rest = rest.strip_prefix("pub(crate) ").or_else(|| rest.strip_prefix("pub ")).unwrap_or(rest);
        if !rest.starts_with("mod ") {
            continue;
        }
        let Some(open) = out[at..].find('{').map(|n| at + n) else { break };
        let mut depth = 0;
        let mut end = out.len();
        for (i, c) in out[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        let blanked: String = out[at..end].chars().map(|c| if c == '\n' { '\n' } else { ' ' }).collect();
        out.replace_range(at..end, &blanked);
    }
    out
}

/// The strongly connected components of more than one module (Tarjan), each sorted.
fn strongly_connected<'a>(
    nodes: &'a BTreeSet<Module>,
    edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
) -> Vec<Vec<&'a str>> {
    struct Tarjan<'a, 'e> {
        edges: &'e BTreeMap<&'a str, BTreeSet<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<&'a str>>,
    }
    impl<'a> Tarjan<'a, '_> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for &w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort_unstable();
                    self.out.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in nodes {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out.sort();
    t.out
}

/// A shortest loop from `start` back to it inside `members` (breadth first), as a list of modules
/// ending where it began.
fn one_cycle<'a>(
    start: &'a str,
    members: &BTreeSet<&'a str>,
    edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
) -> Vec<&'a str> {
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in edges.get(v).into_iter().flatten().filter(|w| members.contains(*w)) {
            if w == start {
                let mut path = vec![start, v];
                let mut at = v;
                while at != start {
                    at = came_from[at];
                    path.push(at);
                }
                path.reverse();
                return path;
            }
            if !came_from.contains_key(w) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    vec![start]
}

fn rel(root: &Path, file: &Path) -> String {
    format!("provisioner/{}", file.strip_prefix(root).unwrap_or(file).display())
}

#[test]
fn the_architecture_page_draws_the_layers_of_the_table() {
    // docs/ARCHITECTURE.md's layer table names each layer of layers.txt, in order, and no other.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let table = Layers::parse(&std::fs::read_to_string(root.join("layers.txt")).expect("layers.txt"));
    let page = std::fs::read_to_string(root.join("../docs/ARCHITECTURE.md")).expect("docs/ARCHITECTURE.md");
    let drawn: Vec<&str> = page
        .lines()
        .skip_while(|l| !l.starts_with("## Layers"))
        .skip_while(|l| !l.starts_with("|---"))
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(1).map(str::trim))
        .collect();
    assert_eq!(drawn, table.names, "the layers docs/ARCHITECTURE.md draws, against provisioner/layers.txt");
}

#[test]
fn use_trees_expand_to_each_path() {
    let got = expand("crate::{a,b::{c,d},e::self}");
    assert_eq!(got, ["crate::a", "crate::b::c", "crate::b::d", "crate::e"]);
    assert_eq!(expand("crate::aws::Clients"), ["crate::aws::Clients"]);
    let paths = use_paths("pub use crate::basin::{x as y, z};\nuse crate::asks as b;\n");
    assert_eq!(
        paths.iter().map(|p| p.1.as_str()).collect::<Vec<_>>(),
        ["pub crate::basin::x", "pub crate::basin::z", "crate::asks"]
    );
}

#[test]
fn comments_strings_and_test_modules_are_not_code() {
    let code = code_only("let a = \"crate::x\"; // crate::y\nlet c = '\"'; crate::z::f();\n");
    assert!(!code.contains("crate::x") && !code.contains("crate::y") && code.contains("crate::z"), "{code}");
    let known: BTreeSet<Module> = ["a", "z"].into_iter().map(str::to_owned).collect();
    let text = "use crate::z;\n#[cfg(test)]\nmod tests {\n    use crate::a;\n}\n";
    let refs = references_of("b", text, &known, &BTreeMap::new());
    assert_eq!(refs.iter().map(|r| (r.to.as_str(), r.line)).collect::<Vec<_>>(), [("z", 1)]);
}
