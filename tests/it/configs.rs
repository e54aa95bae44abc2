//! The example configs stay true to the parser: every file in `config/`
//! parses, and `example.toml` mentions every key the parser accepts.

use std::path::Path;

use tfe_bootstrap::config::raw::RawConfig;

use crate::util::*;

/// The keys the parser accepts in `table`, read from the parser itself: an
/// unknown key makes serde list the expected ones. `None` when `table` is
/// not a table (a scalar key, say).
fn accepted_keys(table: &str) -> Option<Vec<String>> {
    let text = format!("[{table}]\nzz_not_a_key = 1\n");
    let err = toml::from_str::<RawConfig>(&text).unwrap_err().to_string();
    if !err.contains("unknown field `zz_not_a_key`") {
        return None;
    }
    let list = err
        .split("expected one of")
        .nth(1)
        .or_else(|| err.split("expected").nth(1))?;
    Some(
        list.split('`')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect(),
    )
}

#[test]
fn example_toml_mentions_every_key_the_parser_accepts() {
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml"))
            .unwrap();
    let top: Vec<String> = {
        let err = toml::from_str::<RawConfig>("[zz_not_a_table]\n")
            .unwrap_err()
            .to_string();
        err.split("expected one of")
            .nth(1)
            .unwrap()
            .split('`')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect()
    };
    assert!(top.contains(&"smtp".to_string()), "{top:?}");
    let mut keys = vec![];
    for t in &top {
        for k in accepted_keys(t).unwrap_or_else(|| panic!("[{t}] is not a table")) {
            // A key that is itself a table is checked one level down.
            match accepted_keys(&format!("{t}.{k}")) {
                Some(sub) => keys.extend(sub.into_iter().map(|s| (format!("{t}.{k}"), s))),
                None => keys.push((t.clone(), k)),
            }
        }
    }
    assert!(keys.len() > 60, "found only {} keys", keys.len());
    let mut missing = vec![];
    for (table, key) in &keys {
        // The key must appear inside its table's part of the example (set or commented).
        let header = format!("[{table}]");
        let start = example
            .find(&header)
            .unwrap_or_else(|| panic!("example.toml has no {header}"));
        let rest = &example[start + header.len()..];
        let end = rest
            .find("\n[")
            .or_else(|| rest.find("\n# ["))
            .unwrap_or(rest.len());
        let section = &rest[..end];
        if !section.lines().any(|l| {
            l.trim_start_matches(['#', ' '])
                .starts_with(&format!("{key} ="))
        }) {
            missing.push(format!("{table}.{key}"));
        }
        assert!(
            tfe_bootstrap::config::KNOWN_KEYS.contains(&format!("{table}.{key}").as_str()),
            "KNOWN_KEYS lacks {table}.{key}"
        );
    }
    assert!(
        missing.is_empty(),
        "config/example.toml does not document: {missing:?}"
    );
    assert_eq!(
        keys.len(),
        tfe_bootstrap::config::KNOWN_KEYS.len(),
        "KNOWN_KEYS lists keys the parser refuses"
    );
}

#[test]
fn every_file_in_config_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let text = std::fs::read_to_string(&p).unwrap();
            if let Err(e) = toml::from_str::<RawConfig>(&text) {
                panic!("{} does not parse: {e}", p.display());
            }
            n += 1;
        }
    }
    assert!(n >= 3, "example, minimal and demo configs");
}

/// `validate` summarizes the config in its own key names (snake_case, as
/// the operator wrote them) and units (durations as durations), with
/// `--preflight` too: every line names a key the parser accepts.
#[test]
fn the_validate_summary_speaks_the_configs_language() {
    let w = World::new(sim_opts());
    let t = w.config_text()
        + TWILIO_SECTION
        + "\n[customization]\nlogin_help = \"Ask #platform\"\n\n[renew]\nbefore = \"5d\"\n";
    w.write_config(&t.replace(
        "[organization]\n",
        "[organization]\nsession_timeout = \"8h\"\n",
    ));
    for args in [&["validate"][..], &["validate", "--preflight"][..]] {
        let r = w.run(args);
        assert_code(&r, 0);
        let keys: Vec<&str> = r
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("  ")?.split_once(" = ").map(|(k, _)| k))
            .filter(|k| !k.starts_with("secrets"))
            .collect();
        assert!(keys.len() > 30, "{args:?}: {}", r.stdout);
        for k in &keys {
            assert!(
                tfe_bootstrap::config::KNOWN_KEYS.contains(k),
                "{args:?}: the summary says {k}, which is no config key\n{}",
                r.stdout
            );
        }
        for line in [
            "organization.token_ttl.user = \"30d\"",
            "organization.session_timeout = \"8h\"",
            "customization.login_help = \"Ask #platform\"",
            "renew.before = \"5d\"",
            "general.limit_user_organization_creation = true",
        ] {
            assert!(
                r.stdout.contains(line),
                "{args:?} lacks {line}:\n{}",
                r.stdout
            );
        }
    }
}
