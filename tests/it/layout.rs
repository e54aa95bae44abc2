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
        ("step.rs", &["machine", "output", "steps", "commands"]),
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
    let helpers = [
        "mod.rs",
        "settings.rs",
        "service_token.rs",
        "witness.rs",
        "renew.rs",
    ];
    for f in files_under(&root.join("src/steps")) {
        let name = f.file_name().unwrap().to_str().unwrap();
        if helpers.contains(&name) {
            continue;
        }
        // Each step file declares its own name: `StepName::new("...")`.
        let text = std::fs::read_to_string(&f).unwrap();
        let declared = text
            .split("StepName::new(\"")
            .nth(1)
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
            let public =
                sig.starts_with("pub fn ") || (sig.starts_with("fn ") && f.ends_with("step.rs"));
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
