//! Durations as operators write them: `"500ms"`, `"90s"`, `"30m"`, `"12h"`,
//! `"90d"`, `"2w"`, `"6mo"`, `"1y"`, with `mo` = 30 days and `y` = 365 days
//! as TFE's provider counts (humantime's 365.25-day year would not match).
//! A decimal amount (`"0.5h"`) is accepted like the provider does.

use std::time::Duration;

const UNITS: &[(&str, u128)] = &[
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
    ("w", 7 * 86_400_000),
    ("mo", 30 * 86_400_000),
    ("y", 365 * 86_400_000),
];

/// Why a duration could not be read; each message quotes the text and
/// says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// No unit after the number (`"90"`).
    #[error(
        "{0:?} has no unit: write e.g. \"90s\", \"30m\", \"12h\", \"90d\" (units: ms s m h d w mo y)"
    )]
    NoUnit(String),
    /// A unit that is none of `ms s m h d w mo y`.
    #[error("{text:?} has an unknown unit {unit:?}: use one of ms s m h d w mo y")]
    UnknownUnit { text: String, unit: String },
    /// What stands before the unit is not a number.
    #[error("{0:?} is not a number followed by a unit")]
    NotANumber(String),
    /// More than fits in a duration.
    #[error("{0:?} is too large")]
    TooLarge(String),
}

/// Parses one duration.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| DurationError::NoUnit(s.to_string()))?;
    let (num, unit) = t.split_at(split);
    let per_ms = UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, ms)| *ms)
        .ok_or_else(|| DurationError::UnknownUnit {
            text: s.to_string(),
            unit: unit.to_string(),
        })?;
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() || num.matches('.').count() > 1 || frac.len() > 9 {
        return Err(DurationError::NotANumber(s.to_string()));
    }
    let too_large = || DurationError::TooLarge(s.to_string());
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| too_large())?
    };
    let frac_val: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse()
            .map_err(|_| DurationError::NotANumber(s.to_string()))?
    };
    let scale = 10u128.pow(frac.len() as u32);
    // Work in nanoseconds (u128) so "0.5ms" stays exact.
    let nanos = int
        .checked_mul(per_ms * 1_000_000)
        .and_then(|n| n.checked_add(frac_val * per_ms * 1_000_000 / scale))
        .ok_or_else(too_large)?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_large())?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Formats a duration compactly for messages, e.g. `90s`, `1500ms`, `2h`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, per) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= per && ms.is_multiple_of(per) {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("12h").unwrap(), Duration::from_secs(43_200));
        assert_eq!(
            parse_duration("90d").unwrap(),
            Duration::from_secs(90 * 86_400)
        );
        assert_eq!(
            parse_duration("2w").unwrap(),
            Duration::from_secs(14 * 86_400)
        );
        assert_eq!(
            parse_duration("6mo").unwrap(),
            Duration::from_secs(180 * 86_400)
        );
        assert_eq!(
            parse_duration("1y").unwrap(),
            Duration::from_secs(365 * 86_400)
        );
        assert_eq!(parse_duration("0.5h").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration(" 2y ").unwrap().as_millis(), 63_072_000_000);
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        for bad in [
            "",
            "10",
            "s",
            "1x",
            "1.2.3s",
            "-1s",
            "1e3s",
            "99999999999999999999999y",
            "1.0000000001s",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }
}
