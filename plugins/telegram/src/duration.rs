//! Durations as the bot's commands take them (`/mute 30m`, `/silence ... 2h`): `90s`,
//! `30m`, `2h`, `1d`, `1w`, or combinations like `1h30m`; a bare number means minutes.
//! Each command judges the length itself (a mute's longest, a silence's).

use std::time::Duration;

/// The length `text` says, or `None` when it is not a duration. Case does not matter;
/// a sum too large to count saturates (the caller's ceiling refuses it).
pub fn parse(text: &str) -> Option<Duration> {
    let text = text.trim().to_ascii_lowercase();
    if text.is_empty() {
        return None;
    }
    if let Ok(minutes) = text.parse::<u64>() {
        return Some(Duration::from_secs(minutes.saturating_mul(60)));
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            'w' => 7 * 86400,
            _ => return None,
        };
        let n: u64 = number.parse().ok()?;
        total = total.saturating_add(n.saturating_mul(unit));
        number.clear();
    }
    if !number.is_empty() {
        return None;
    }
    Some(Duration::from_secs(total))
}

/// What to write instead of `text`, which is not a duration.
pub fn not_a_duration(text: &str) -> String {
    format!("{text:?} is not a duration; write it like 30m, 2h, 1h30m or 1d")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_sum_and_a_bare_number_is_minutes() {
        let secs = |s: &str| parse(s).map(|d| d.as_secs());
        assert_eq!(secs("90s"), Some(90));
        assert_eq!(secs("30"), Some(1800));
        assert_eq!(secs("1h30m"), Some(5400));
        assert_eq!(secs("2H"), Some(7200));
        assert_eq!(secs("1w"), Some(7 * 86400));
        assert_eq!(secs("0m"), Some(0));
        for bad in ["", "soon", "30x", "m", "1h30", "-5m", "type=error"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
