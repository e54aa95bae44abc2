//! The module graph stays one-way (issue 13): steps never import the machine
//! or the reporter; the error type and the reporter never import the
//! machine; the TFE client imports nothing above it. Read from the sources,
//! so a new `use` that closes a circle fails here before review.

use std::path::{Path, PathBuf};

use crate::util::files_under;

/// The crate's top-level modules a file refers to through `crate::` (in any
/// `use` tree or path expression) or, from inside a module folder, through
/// `super::super::`.
fn referenced_modules(src: &str) -> Vec<String> {
    let mut code = String::new();
    for line in src.lines() {
        let l = line.trim_start();
        if l.starts_with("//") {
            continue;
        }
        code.push_str(line);
        code.push('\n');
    }
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = vec![];
    for prefix in ["crate::", "super::super::"] {
        let mut rest = code.as_str();
        while let Some(i) = rest.find(prefix) {
            rest = &rest[i + prefix.len()..];
            let after = rest.trim_start();
            if let Some(group) = after.strip_prefix('{') {
                // `crate::{a, b::c, d::{e}}`: the first segment of each
                // top-level item.
                let mut depth = 0;
                let mut item_start = true;
                for (j, ch) in group.char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        c if item_start && !c.is_whitespace() => {
                            out.push(ident(&group[j..]));
                            item_start = false;
                        }
                        _ => {}
                    }
                }
            } else {
                out.push(ident(after));
            }
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

/// `(file, forbidden module)` for every rule broken under `root`.
fn violations(root: &Path) -> Vec<(PathBuf, String)> {
    let rules: &[(&str, &[&str])] = &[
        ("steps", &["machine", "output", "commands"]),
        (
            "step",
            &["machine", "output", "steps", "commands", "fleet", "tokens"],
        ),
        ("fleet", &["machine", "output", "steps", "commands"]),
        (
            "tokens",
            &["machine", "output", "steps", "commands", "fleet"],
        ),
        (
            "store.rs",
            &[
                "machine", "output", "steps", "commands", "fleet", "tokens", "step",
            ],
        ),
        ("session.rs", &["machine", "steps", "commands", "fleet"]),
        ("error.rs", &["machine", "steps", "output"]),
        ("output.rs", &["machine", "steps"]),
        ("tfe", &["steps", "machine", "output", "commands", "step"]),
        ("state.rs", &["steps", "machine", "output", "commands"]),
        ("config", &["steps", "machine", "output", "commands", "tfe"]),
        (
            "redact.rs",
            &[
                "steps", "machine", "output", "commands", "tfe", "config", "state", "step",
            ],
        ),
    ];
    let mut out = vec![];
    for (place, forbidden) in rules {
        let p = root.join(place);
        let files = if p.is_dir() {
            files_under(&p)
        } else {
            vec![p.clone()]
        };
        for f in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "rs"))
        {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            for m in referenced_modules(&text) {
                if forbidden.contains(&m.as_str()) {
                    out.push((f.clone(), m));
                }
            }
        }
    }
    out
}

#[test]
fn the_module_graph_has_no_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = violations(&src);
    assert!(
        bad.is_empty(),
        "imports against the layout (README, Development): {bad:#?}"
    );
}

#[test]
fn the_layout_check_catches_every_import_form() {
    let d = tempfile::tempdir().unwrap();
    let w = |p: &str, text: &str| {
        let f = d.path().join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    };
    w("steps/a.rs", "use crate::machine::Ctx;\n");
    w(
        "steps/b.rs",
        "use crate::{config::Config, output::Event};\n",
    );
    w("steps/c.rs", "fn f() { super::super::machine::run(); }\n");
    w(
        "steps/d.rs",
        "// use crate::machine::Ctx; (a comment)\nuse crate::step::Ctx;\n",
    );
    w(
        "error.rs",
        "use crate::{\n    config,\n    machine::StepName,\n};\n",
    );
    w(
        "output.rs",
        "fn f() -> crate::machine::Assessment { todo!() }\n",
    );
    w("tfe/api.rs", "use crate::steps::admin;\n");
    let mut found: Vec<(String, String)> = violations(d.path())
        .into_iter()
        .map(|(f, m)| {
            let rel = f.strip_prefix(d.path()).unwrap().display().to_string();
            (rel, m)
        })
        .collect();
    found.sort();
    let want: Vec<(String, String)> = [
        ("error.rs", "machine"),
        ("output.rs", "machine"),
        ("steps/a.rs", "machine"),
        ("steps/b.rs", "output"),
        ("steps/c.rs", "machine"),
        ("tfe/api.rs", "steps"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(found, want);
}

#[test]
fn adding_a_step_touches_the_places_readme_names() {
    // README's Development section names the places; the machine's order is
    // the one list of steps, and every step file is in it.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains("src/steps/") && readme.contains("ORDER"),
        "README's Development section must say where a step goes"
    );
    // The order as the code has it (a commented-out line drops a step).
    let order: Vec<&str> = tfe_bootstrap::machine::names()
        .map(|n| n.as_str())
        .collect();
    let helpers = ["mod.rs", "settings.rs", "witness.rs", "iact_source.rs"];
    for f in files_under(&root.join("src/steps")) {
        let name = f.file_name().unwrap().to_str().unwrap();
        if helpers.contains(&name) {
            continue;
        }
        // Each step file takes its name from the names leaf:
        // `NAME: StepName = crate::step_name::X`, where `X` is
        // `StepName::new("...")`.
        let text = std::fs::read_to_string(&f).unwrap();
        let names = std::fs::read_to_string(root.join("src/step_name.rs")).unwrap();
        let declared = text
            .split("NAME: StepName = crate::step_name::")
            .nth(1)
            .and_then(|r| r.split(';').next())
            .and_then(|c| {
                names
                    .split(&format!("pub const {c}: StepName = StepName::new(\""))
                    .nth(1)
            })
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("src/steps/{name} declares no StepName"));
        assert!(
            order.contains(&declared),
            "src/steps/{name} (step {declared}) is not in machine.rs ORDER: {order:?}"
        );
    }
    assert_eq!(
        order.len(),
        files_under(&root.join("src/steps")).len() - helpers.len(),
        "every step in ORDER has its own file under src/steps/"
    );
}

/// Every top-level module's edges to the others, read from the sources.
fn module_graph(
    root: &Path,
) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut g: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for f in files_under(root)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
    {
        let rel = f.strip_prefix(root).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if ["lib", "main", "bin"].contains(&module.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let entry = g.entry(module.clone()).or_default();
        for m in referenced_modules(&text) {
            if m != module {
                entry.insert(m);
            }
        }
    }
    g
}

/// A circle in `g`, if any: the modules on it, in order.
fn a_circle(
    g: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut c = path[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = Default::default();
    g.keys().find_map(|n| visit(n, g, &mut vec![], &mut done))
}

/// Not only the rules above: no circle at all between the crate's
/// top-level modules (issue 24).
#[test]
fn no_top_level_modules_import_each_other_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = module_graph(&src);
    assert!(g.len() > 10, "{g:?}");
    assert_eq!(a_circle(&g), None, "a circle in the module graph");
    // The check sees a circle where there is one.
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("a.rs"), "use crate::b::X;\n").unwrap();
    std::fs::write(d.path().join("b.rs"), "use crate::c::Y;\n").unwrap();
    std::fs::write(d.path().join("c.rs"), "fn f() { crate::a::z(); }\n").unwrap();
    assert_eq!(
        a_circle(&module_graph(d.path())),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

/// Every `.rs` file under `src/`, with its text.
fn library_sources() -> Vec<(PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    files_under(&src)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            (f, text)
        })
        .collect()
}

/// Errors are typed (issue 25): no public function of the library, and no
/// method of its public `Step` trait, returns `Result<_, String>`.
#[test]
fn no_public_signature_returns_a_string_error() {
    let mut found = vec![];
    for (f, text) in library_sources() {
        let mut sig = String::new();
        for line in text.lines() {
            let l = line.trim_start();
            if sig.is_empty() && !(l.starts_with("pub fn ") || l.starts_with("fn ")) {
                continue;
            }
            sig.push_str(l);
            if !(l.ends_with('{') || l.ends_with(';')) {
                continue;
            }
            let public = sig.starts_with("pub fn ")
                || (sig.starts_with("fn ") && f.ends_with("step/mod.rs"));
            if public && sig.replace(' ', "").contains(",String>") {
                found.push(format!("{}: {sig}", f.display()));
            }
            sig.clear();
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

/// The variants of the library's error types, each with whether it has a
/// doc comment: every `pub enum` whose name ends in `Error` or `Failure`,
/// or that derives `thiserror::Error`.
fn error_variants(text: &str) -> Vec<(String, bool)> {
    let mut out = vec![];
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut i = 0;
    while i < lines.len() {
        let name = lines[i]
            .strip_prefix("pub enum ")
            .map(|r| r.trim_end_matches('{').trim().to_string());
        let derives = lines[i.saturating_sub(3)..i]
            .iter()
            .any(|l| l.contains("thiserror::Error"));
        let Some(name) = name.filter(|n| derives || n.ends_with("Error") || n.ends_with("Failure"))
        else {
            i += 1;
            continue;
        };
        let (mut depth, mut doc) = (0i32, false);
        for l in &lines[i..] {
            i += 1;
            if depth == 1 && l.starts_with("///") {
                doc = true;
            }
            let variant = l
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .next()
                .filter(|w| w.starts_with(|c: char| c.is_ascii_uppercase()));
            if depth == 1
                && let Some(v) = variant
            {
                out.push((format!("{name}::{v}"), doc));
                doc = false;
            }
            depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
            if depth == 0 && l.contains('}') {
                break;
            }
        }
    }
    out
}

/// `cargo doc` says when each error happens (issue 25): every variant of
/// every error type in `src/` has a doc comment.
#[test]
fn every_error_variant_says_when_it_happens() {
    let all: Vec<_> = library_sources()
        .iter()
        .flat_map(|(_, text)| error_variants(text))
        .collect();
    let bare: Vec<_> = all.iter().filter(|(_, doc)| !doc).collect();
    assert!(
        bare.is_empty(),
        "error variants without a doc comment: {bare:#?}"
    );
    // The reader itself: it finds the types it must, and a bare variant.
    for known in [
        "StoreError::Spawn",
        "TfeError::Status",
        "StepFailure::NoAdmin",
        "DurationError::NoUnit",
    ] {
        assert!(
            all.iter().any(|(v, _)| v == known),
            "{known} not found in {all:#?}"
        );
    }
    let planted = "#[derive(Debug, thiserror::Error)]\npub enum E {\n    /// When.\n    #[error(\n        \"x\"\n    )]\n    A(String),\n    B { x: u8 },\n}\n";
    assert_eq!(
        error_variants(planted),
        vec![("E::A".to_string(), true), ("E::B".to_string(), false)]
    );
}

/// `text` with comments, string and char literals blanked (same length,
/// newlines kept): what is left is code, for the readers below.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |s: &[u8], out: &mut String| {
        for &c in s {
            out.push(if c == b'\n' { '\n' } else { ' ' });
        }
    };
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
            blank(&rest[..end], &mut out);
            i += end;
        } else if rest.starts_with(b"r#\"") || rest.starts_with(b"r\"") {
            let hashes = rest[1..].iter().take_while(|&&c| c == b'#').count();
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let start = 2 + hashes;
            let end = rest[start..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map(|p| start + p + close.len())
                .unwrap_or(rest.len());
            blank(&rest[..end], &mut out);
            i += end;
        } else if rest[0] == b'"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(rest.len());
            blank(&rest[..end], &mut out);
            i += end;
        } else if rest[0] == b'\''
            && rest.len() > 2
            && (rest[2] == b'\'' || (rest[1] == b'\\' && rest.len() > 3 && rest[3] == b'\''))
        {
            let end = if rest[2] == b'\'' { 3 } else { 4 };
            blank(&rest[..end], &mut out);
            i += end;
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Every function in `text` that spans more than `limit` lines: (name,
/// first line, lines).
fn long_functions(text: &str, limit: usize) -> Vec<(String, usize, usize)> {
    let code = code_only(text);
    let lines: Vec<&str> = code.lines().collect();
    let mut out = vec![];
    for (i, l) in lines.iter().enumerate() {
        let Some(at) = l.find("fn ") else { continue };
        if at > 0 && l.as_bytes()[at - 1].is_ascii_alphanumeric() {
            continue;
        }
        let name: String = l[at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        let (mut depth, mut opened) = (0i32, false);
        for (j, body) in lines[i..].iter().enumerate() {
            let from = if j == 0 { at } else { 0 };
            for c in body[from..].chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    ';' if !opened && depth == 0 => break,
                    _ => {}
                }
            }
            if (opened && depth == 0) || (!opened && body[from..].contains(';')) {
                if opened && j + 1 > limit {
                    out.push((name.clone(), i + 1, j + 1));
                }
                break;
            }
        }
    }
    out
}

/// No function of the program is over 100 lines (issue 32); the simulator
/// is a test fixture and is left out.
#[test]
fn no_function_outside_the_simulator_is_over_100_lines() {
    let mut long = vec![];
    for (f, text) in library_sources() {
        if f.components().any(|c| c.as_os_str() == "sim") {
            continue;
        }
        for (name, line, n) in long_functions(&text, 100) {
            long.push(format!("{}:{line} {name}: {n} lines", f.display()));
        }
    }
    assert!(long.is_empty(), "functions over 100 lines: {long:#?}");
    // The reader counts what it must: braces in strings and comments are
    // not code, a declaration has no body.
    let planted = format!(
        "fn short() {{ let s = \"}}\"; }}\n// fn no() {{\nfn long() {{\n{}}}\ntrait T {{ fn decl(&self); }}\n",
        "    let x = '{';\n".repeat(101)
    );
    assert_eq!(long_functions(&planted, 100), vec![("long".into(), 3, 103)]);
}

/// The engine only orders (issue 32): it fits in 450 lines, and it names
/// no step outside its `ORDER` table.
#[test]
fn the_engine_names_no_step_outside_its_order() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("src/machine.rs")).unwrap();
    let n = text.lines().count();
    assert!(n <= 450, "src/machine.rs has {n} lines");
    let code = code_only(&text);
    let start = code.find("pub const ORDER").expect("ORDER");
    let end = start + code[start..].find("];").expect("end of ORDER");
    let outside = format!("{}{}", &code[..start], &code[end..]);
    let named: Vec<&str> = outside
        .lines()
        .filter(|l| l.contains("steps::") || l.contains("step_name::"))
        .collect();
    assert!(named.is_empty(), "the engine names steps: {named:#?}");
}

/// The module a path names, as a file under `src/`: the deepest of its
/// prefixes that is a module file (`a/b.rs` or `a/b/mod.rs`).
fn module_file(src: &Path, segments: &[String]) -> Option<PathBuf> {
    let mut best = None;
    for k in 1..=segments.len() {
        let rel: PathBuf = segments[..k].iter().collect();
        for cand in [rel.with_extension("rs"), rel.join("mod.rs")] {
            if src.join(&cand).is_file() {
                best = Some(cand);
            }
        }
    }
    best
}

/// The module files each file of `src` refers to, through `crate::`,
/// `super::` or `self::` paths (in `use` trees too).
fn file_graph(
    src: &Path,
) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut g: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for f in files_under(src)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
    {
        let rel = f.strip_prefix(src).unwrap().to_path_buf();
        // The module path of this file, and of its parent module.
        let mut here: Vec<String> = rel
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if here.last().is_some_and(|l| l == "mod") {
            here.pop();
        }
        if here.len() == 1 && ["lib", "main"].contains(&here[0].as_str()) {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(&f).unwrap());
        let entry = g.entry(rel.display().to_string()).or_default();
        for path in paths_in(&code) {
            let mut segs: Vec<String> = vec![];
            let mut it = path.iter().peekable();
            match it.peek().map(|s| s.as_str()) {
                Some("crate") => {
                    it.next();
                }
                Some("super") | Some("self") => {
                    segs = here.clone();
                    while let Some(s) = it.peek() {
                        match s.as_str() {
                            "super" => {
                                segs.pop();
                            }
                            "self" => {}
                            _ => break,
                        }
                        it.next();
                    }
                }
                _ => continue,
            }
            segs.extend(it.cloned());
            if let Some(target) = module_file(src, &segs) {
                let t = target.display().to_string();
                if t != rel.display().to_string() {
                    entry.insert(t);
                }
            }
        }
    }
    g
}

/// Every `crate::`/`super::`/`self::` path in `code`, as segments; a `use`
/// group `a::{b, c::d}` gives one path per item.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    fn ident(s: &str) -> &str {
        let n = s
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        &s[..n]
    }
    fn walk(prefix: &[String], s: &str, out: &mut Vec<Vec<String>>) -> usize {
        // Reads `seg::seg::{...}` or `seg::seg` at the start of `s`.
        let mut segs = prefix.to_vec();
        let mut i = 0;
        loop {
            let rest = s[i..].trim_start();
            i = s.len() - rest.len();
            if let Some(group) = rest.strip_prefix('{') {
                let mut j = 0;
                loop {
                    let g = &group[j..];
                    let t = g.trim_start();
                    if t.starts_with('}') {
                        return i + 1 + (g.len() - t.len()) + j + 1;
                    }
                    let used = walk(&segs, t, out);
                    j += (g.len() - t.len()) + used.max(1);
                    let t = group[j..].trim_start();
                    j = group.len() - t.len();
                    if let Some(after) = t.strip_prefix(',') {
                        j = group.len() - after.len();
                    }
                    if j >= group.len() {
                        return s.len();
                    }
                }
            }
            let id = ident(rest);
            if id.is_empty() {
                break;
            }
            segs.push(id.to_string());
            i += id.len();
            if s[i..].starts_with("::") {
                i += 2;
            } else {
                break;
            }
        }
        if segs.len() > prefix.len() || !prefix.is_empty() {
            out.push(segs);
        }
        i
    }
    let mut out = vec![];
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(p) = code[from..].find(start) {
            let at = from + p;
            from = at + start.len();
            if at > 0 {
                let before = code.as_bytes()[at - 1];
                if before.is_ascii_alphanumeric() || before == b'_' || before == b':' {
                    continue;
                }
            }
            walk(&[], &code[at..], &mut out);
        }
    }
    out
}

/// No two files of `src/` import each other, directly or round a circle
/// (issue 32: `steps/admin.rs` and `steps/iact.rs` did).
#[test]
fn no_files_import_each_other_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = file_graph(&src);
    assert!(
        g.get("steps/admin.rs")
            .is_some_and(|e| e.contains("tokens/admin.rs")),
        "the reader sees the imports: {g:#?}"
    );
    assert_eq!(a_circle(&g), None, "a circle among the files of src/");
    // The reader resolves `super::` and groups, and sees a circle.
    let d = tempfile::tempdir().unwrap();
    let w = |p: &str, text: &str| {
        let f = d.path().join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    };
    w("steps/mod.rs", "mod a;\nmod b;\n");
    w("steps/a.rs", "use super::{b::X, mod_fn};\n");
    w("steps/b.rs", "fn f() { crate::steps::a::g(); }\n");
    let c = a_circle(&file_graph(d.path())).expect("a circle");
    assert!(c.contains(&"steps/a.rs".to_string()) && c.contains(&"steps/b.rs".to_string()));
}

/// Token files are written, and their room claimed, only in the token
/// lifecycle (issue 32): no file outside `src/tokens/` claims room for a
/// token or writes one, and no step writes a file at all.
#[test]
fn only_the_token_lifecycle_writes_token_files() {
    let mut found = vec![];
    for (f, text) in library_sources() {
        let rel = f
            .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
            .unwrap()
            .display()
            .to_string();
        if rel.starts_with("tokens/") || rel.starts_with("sim/") || rel == "util.rs" {
            continue;
        }
        let code = code_only(&text);
        let step_file = rel.starts_with("steps/") || rel.starts_with("fleet/");
        for (i, l) in code.lines().enumerate() {
            let claims = l.contains("Claim::make") || l.contains("Reservation::");
            let writes =
                l.contains("write_atomic") || l.contains("fs::write") || l.contains("fs::rename");
            if claims || (step_file && writes) {
                found.push(format!("{rel}:{}: {}", i + 1, l.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "token files written outside src/tokens/: {found:#?}"
    );
}
