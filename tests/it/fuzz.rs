//! Property tests over everything that reads outside input: the config
//! parser, the duration parser, JSON:API error decoding and the state file.
//! No input may panic; every rejection must be a clean error.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use tfe_bootstrap::config::duration::parse_duration;
use tfe_bootstrap::config::raw::RawConfig;
use tfe_bootstrap::config::{Config, KNOWN_KEYS};
use tfe_bootstrap::state::{CheckpointStore, DirStore};
use tfe_bootstrap::tfe::error_detail;

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

/// A minimal valid config with random known keys (random values) layered
/// over it, so that both the accepting and the rejecting paths are explored.
fn config() -> impl Strategy<Value = String> {
    proptest::collection::vec((0..KNOWN_KEYS.len(), value()), 0..12).prop_map(|pairs| {
        let mut tables: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut put = |key: &str, v: String| {
            let (t, k) = key.rsplit_once('.').unwrap();
            tables
                .entry(t.to_string())
                .or_default()
                .insert(k.to_string(), v);
        };
        put("tfe.address", "\"https://tfe.example.com\"".into());
        put("admin.token", "\"fuzz-admin-token\"".into());
        for (i, v) in pairs {
            put(KNOWN_KEYS[i], v);
        }
        tables
            .iter()
            .map(|(t, kv)| {
                format!(
                    "[{t}]\n{}\n",
                    kv.iter()
                        .map(|(k, v)| format!("{k} = {v}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            })
            .collect()
    })
}

const CASES: u32 = 400;

/// Runs `check` on `CASES` inputs from `strategy` (a panic fails the test,
/// with shrinking); `check` returns whether the input was rejected. Prints the
/// figure for RELIABILITY.md.
fn property<S: Strategy>(name: &str, strategy: S, check: impl Fn(S::Value) -> bool) {
    let rejected = AtomicUsize::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: CASES,
        ..ProptestConfig::default()
    });
    runner
        .run(&strategy, |v| {
            if check(v) {
                rejected.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    println!(
        "RELIABILITY fuzz-{name} cases={CASES} rejected-cleanly={}",
        rejected.load(Ordering::Relaxed)
    );
}

#[test]
fn durations_never_panic() {
    property("durations", "\\PC{0,12}", |s| parse_duration(&s).is_err());
}

#[test]
fn arbitrary_text_as_config_never_panics() {
    property("config-text", "\\PC{0,200}", |t| load_text(&t).is_err());
}

#[test]
fn random_known_keys_are_accepted_or_cleanly_rejected() {
    property("config-keys", config(), |t| match load_text(&t) {
        Ok(_) => false,
        Err(e) => {
            assert!(!e.is_empty());
            true
        }
    });
}

#[test]
fn damaged_state_files_are_errors_not_panics() {
    property(
        "state-files",
        proptest::collection::vec(any::<u8>(), 0..200),
        |bytes| {
            let d = tempfile::tempdir().unwrap();
            std::fs::write(d.path().join("state.json"), &bytes).unwrap();
            DirStore::new(d.path()).load().is_err()
        },
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn valid_durations_parse_exactly(n in 0u64..100_000, unit in prop::sample::select(vec![
        ("ms", 1u64), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000),
        ("mo", 2_592_000_000), ("y", 31_536_000_000)])) {
        let d = parse_duration(&format!("{n}{}", unit.0)).unwrap();
        prop_assert_eq!(d.as_millis(), (n as u128) * (unit.1 as u128));
    }

    #[test]
    fn error_bodies_never_panic(body in "\\PC{0,300}") {
        let _ = error_detail(&body);
    }

    #[test]
    fn json_error_shapes_never_panic(status in prop_oneof![any::<i64>().prop_map(serde_json::Value::from), "[0-9a-z]{0,4}".prop_map(serde_json::Value::from)],
                                     title in proptest::option::of("[a-z ]{0,10}"), detail in proptest::option::of("[a-z ]{0,10}")) {
        let v = serde_json::json!({"errors": [{"status": status, "title": title, "detail": detail}]});
        let out = error_detail(&v.to_string());
        // Whatever shape `status` has, TFE's own words reach the message.
        for words in [&title, &detail].into_iter().flatten().filter(|w| !w.is_empty()) {
            prop_assert!(out.contains(words.as_str()), "{out:?} lost {words:?}");
        }
    }
}
