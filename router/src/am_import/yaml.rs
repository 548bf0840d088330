//! The small pieces of YAML the importer writes: scalars and lists in JSON's syntax
//! (which YAML reads as they are, with nothing to escape but what JSON escapes), names,
//! and durations in the router's units.

use std::time::Duration;

/// `text` as a double-quoted scalar.
pub fn q(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// A flow list of quoted strings: `["a", "b"]`.
pub fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| q(i)).collect();
    format!("[{}]", quoted.join(", "))
}

/// `text` as a router name (letters, digits, `_`, `-`): anything else becomes `-`, and
/// an empty result `fallback`.
pub fn valid_name(text: &str, fallback: &str) -> String {
    let name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches('-').to_owned();
    if name.is_empty() {
        fallback.to_owned()
    } else {
        name
    }
}

/// A duration in the router's syntax, in the largest unit that holds it exactly: the
/// router reads one number and one unit.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// An Alertmanager (Prometheus) duration: one or more `<integer><unit>`, units `y`
/// (365 days), `w`, `d`, `h`, `m`, `s`, `ms`, largest first, e.g. `1h30m`; `0` alone.
pub fn am_duration(text: &str) -> Result<Duration, String> {
    const UNITS: [(&str, u64); 7] = [
        ("ms", 1),
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ];
    let bad = || format!("{text:?} is not a duration: write e.g. 30s, 5m, 1h30m, 1d");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut total: u64 = 0;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit, size) = UNITS
            .iter()
            .find(|(u, _)| rest.starts_with(u))
            .ok_or_else(bad)?;
        rest = &rest[unit.len()..];
        total = n
            .checked_mul(*size)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(bad)?;
    }
    Ok(Duration::from_millis(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_alertmanager_and_write_as_the_router() {
        for (am, router) in [
            ("30s", "30s"),
            ("5m", "5m"),
            ("1h30m", "90m"),
            ("4h", "4h"),
            ("1d", "1d"),
            ("1w", "7d"),
            ("1500ms", "1500ms"),
            ("0", "0ms"),
        ] {
            let d = am_duration(am).expect(am);
            assert_eq!(duration(d), router, "{am}");
            let back = crate::config::parse_duration(&duration(d)).expect("the router reads it");
            assert_eq!(back, d, "{am}");
        }
        for bad in ["", "5", "m", "1.5h", "5 m", "-1s", "1x"] {
            assert!(am_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_quoting() {
        assert_eq!(valid_name("team DB/pager", "x"), "team-DB-pager");
        assert_eq!(valid_name("!!", "route"), "route");
        assert_eq!(q("a \"b\"\n"), r#""a \"b\"\n""#);
        assert_eq!(list(&["a".into(), "b=\"c\"".into()]), r#"["a", "b=\"c\""]"#);
    }
}
