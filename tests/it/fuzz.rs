//! Property tests over everything that reads outside input: the config
//! parser, the duration parser, JSON:API error decoding and the state file.
//! No input may panic; every rejection must be a clean error.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use tfe_bootstrap::config::duration::parse_duration;
use tfe_bootstrap::config::raw::RawConfig;
use tfe_bootstrap::config::{Config, KNOWN_KEYS};
use tfe_bootstrap::state::{CheckpointStore, DirStore};
use tfe_bootstrap::tfe::error_detail;

static REJECTED: AtomicUsize = AtomicUsize::new(0);

fn load_text(text: &str) -> Result<Config, String> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| e.to_string())?;
    Config::from_raw(
        raw,
        Path::new("fuzz.toml"),
        Some(Path::new("/nonexistent/state")),
        false,
    )
    .map_err(|e| e.to_string())
}

/// A TOML value of a random shape.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        "[a-z0-9 .@:/_-]{0,20}".prop_map(|s| format!("{s:?}")),
        "(0|1|15|90|-3)(ms|s|m|h|d|w|mo|y|x|)".prop_map(|s| format!("{s:?}")),
        Just("{ env = \"FUZZ_UNSET_VAR\" }".to_string()),
        Just("{ file = \"/nonexistent/secret\" }".to_string()),
        Just("[\"10.0.0.0/8\", \"x\"]".to_string()),
        Just("{ nope = 1 }".to_string()),
    ]
}

/// A config made of random known keys with random values.
fn config() -> impl Strategy<Value = String> {
    proptest::collection::vec((0..KNOWN_KEYS.len(), value()), 0..25).prop_map(|pairs| {
        let mut tables: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (i, v) in pairs {
            let key = KNOWN_KEYS[i];
            let (t, k) = key.rsplit_once('.').unwrap();
            tables
                .entry(t.to_string())
                .or_default()
                .push(format!("{k} = {v}"));
        }
        tables
            .iter()
            .map(|(t, lines)| format!("[{t}]\n{}\n", lines.join("\n")))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn durations_never_panic(s in "\\PC{0,12}") {
        if parse_duration(&s).is_err() {
            REJECTED.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn valid_durations_parse_exactly(n in 0u64..100_000, unit in prop::sample::select(vec![
        ("ms", 1u64), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000),
        ("mo", 2_592_000_000), ("y", 31_536_000_000)])) {
        let d = parse_duration(&format!("{n}{}", unit.0)).unwrap();
        prop_assert_eq!(d.as_millis(), (n as u128) * (unit.1 as u128));
    }

    #[test]
    fn arbitrary_text_as_config_never_panics(text in "\\PC{0,200}") {
        if load_text(&text).is_err() {
            REJECTED.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn random_known_keys_are_accepted_or_cleanly_rejected(text in config()) {
        match load_text(&text) {
            Ok(_) => {}
            Err(e) => {
                REJECTED.fetch_add(1, Ordering::Relaxed);
                prop_assert!(!e.is_empty());
                prop_assert!(!e.contains("panicked"));
            }
        }
    }

    #[test]
    fn error_bodies_never_panic(body in "\\PC{0,300}") {
        let _ = error_detail(&body);
    }

    #[test]
    fn json_error_shapes_never_panic(status in prop_oneof![any::<i64>().prop_map(serde_json::Value::from), "[0-9a-z]{0,4}".prop_map(serde_json::Value::from)],
                                     title in proptest::option::of("[a-z ]{0,10}"), detail in proptest::option::of("[a-z ]{0,10}")) {
        let v = serde_json::json!({"errors": [{"status": status, "title": title, "detail": detail}], "error": detail});
        let _ = error_detail(&v.to_string());
    }

    #[test]
    fn damaged_state_files_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("state.json"), &bytes).unwrap();
        if DirStore::new(d.path()).load().is_err() {
            REJECTED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[test]
fn zz_report_rejections() {
    // Runs after the properties in the same binary when tests are ordered by
    // name; the figure is informative (RELIABILITY.md), not asserted.
    println!(
        "RELIABILITY fuzz bad-inputs-rejected-cleanly={}",
        REJECTED.load(Ordering::Relaxed)
    );
}
