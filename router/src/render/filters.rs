//! The trading-domain filters templates use: `money`, `percent`, `qty`, `number`,
//! `duration`, `datetime` and `severity_emoji`; and `truncate`, to keep a line of a list
//! within a sink's length limit; and those of [`super::alertmanager`], which shape a group
//! as Alertmanager's webhook does.
//!
//! The number filters take numbers as JSON gives them (integers or floats) or as numeric strings (a
//! shell script posting `pnl=12.5` sends text), and refuses anything else with an error
//! that names the filter and what it got. A missing field is the same "undefined value"
//! error as printing it.

use std::borrow::Cow;

use minijinja::value::{Kwargs, StringInput, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// The names [`register`] adds.
pub(super) const NAMES: &[&str] = &[
    "money",
    "percent",
    "qty",
    "number",
    "duration",
    "datetime",
    "severity_emoji",
    "truncate",
    // super::alertmanager's
    "alertmanager_alerts",
    "common_labels",
    "common_annotations",
    "group_labels",
];

/// Registers every filter of this module on `env`.
pub(super) fn register(env: &mut Environment<'_>) {
    env.add_filter("money", money);
    env.add_filter("percent", percent);
    env.add_filter("qty", qty);
    env.add_filter("number", number);
    env.add_filter("duration", duration);
    env.add_filter("datetime", datetime);
    env.add_filter("severity_emoji", severity_emoji);
    env.add_filter("truncate", truncate);
    super::alertmanager::register(env);
}

/// The most decimals a number filter prints.
const MAX_DECIMALS: i64 = 20;

/// `45000|money` = `$45,000.00`; `money("€")`, `money(signed=true)` = `+$200.00`,
/// `money(decimals=4)`.
fn money(
    state: &State,
    value: &Value,
    symbol: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let n = to_number(state, "money", value)?;
    let symbol = match symbol {
        Some(s) => s,
        None => kwargs
            .get::<Option<String>>("symbol")?
            .unwrap_or_else(|| "$".into()),
    };
    let signed = kwargs.get::<Option<bool>>("signed")?.unwrap_or(false);
    let decimals = decimals("money", kwargs.get("decimals")?, 2)?;
    kwargs.assert_all_used()?;
    let (negative, digits) = n.fixed(decimals);
    Ok(format!(
        "{}{symbol}{}",
        sign(negative, signed, &digits),
        group_thousands(&digits)
    ))
}

/// `4|percent` = `+4.00%` (the value is already in percent); `percent(1)`,
/// `percent(signed=false)` = `65.00%`.
fn percent(
    state: &State,
    value: &Value,
    places: Option<i64>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let n = to_number(state, "percent", value)?;
    let (mut signed, mut named_places) = (true, None);
    if kwargs.args().next().is_some() {
        named_places = kwargs.get("decimals")?;
        signed = kwargs.get::<Option<bool>>("signed")?.unwrap_or(true);
        kwargs.assert_all_used()?;
    }
    let (negative, digits) = n.fixed(decimals("percent", places.or(named_places), 2)?);
    Ok(format!("{}{digits}%", sign(negative, signed, &digits)))
}

/// `0.5|qty` = `0.5000`; `qty(8)`.
fn qty(state: &State, value: &Value, places: Option<i64>) -> Result<String, Error> {
    let n = to_number(state, "qty", value)?;
    let (negative, digits) = n.fixed(decimals("qty", places, 4)?);
    Ok(format!("{}{digits}", sign(negative, false, &digits)))
}

/// `1234.567|number` = `1,234.57`; `number(0)`.
fn number(state: &State, value: &Value, places: Option<i64>) -> Result<String, Error> {
    let n = to_number(state, "number", value)?;
    let (negative, digits) = n.fixed(decimals("number", places, 2)?);
    Ok(format!(
        "{}{}",
        sign(negative, false, &digits),
        group_thousands(&digits)
    ))
}

/// Seconds to `45s`, `3m 20s`, `3h 5m`, `2d 4h` (the two largest units); a text (the
/// original module sent `"3 hours"`) passes through unchanged.
fn duration(state: &State, value: &Value) -> Result<Value, Error> {
    reject_undefined(state, value)?;
    if value.kind() == ValueKind::String {
        return Ok(value.clone());
    }
    let seconds = match Number::from_value(value) {
        Some(n) => n.as_f64(),
        None => return Err(expected("duration", "a number of seconds or a text", value)),
    };
    if !seconds.is_finite() {
        return Err(expected("duration", "a finite number of seconds", value));
    }
    // `as` saturates, which is right for absurd durations.
    let total = seconds.abs().round() as u64;
    let (d, h, m, s) = (
        total / 86_400,
        total % 86_400 / 3_600,
        total % 3_600 / 60,
        total % 60,
    );
    let text = match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) if s == 0 => format!("{m}m"),
        (0, 0, m) => format!("{m}m {s}s"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    };
    let sign = if seconds < 0.0 && total > 0 { "-" } else { "" };
    Ok(Value::from(format!("{sign}{text}")))
}

/// An RFC 3339 time or a unix timestamp (seconds) as `2025-11-03 14:30:00` (UTC), or in
/// the `time` crate format description given (`datetime("[year]-[month]-[day]")`).
fn datetime(state: &State, value: &Value, format: Option<&str>) -> Result<String, Error> {
    reject_undefined(state, value)?;
    let at = if let Some(text) = value.as_str() {
        OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|e| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "datetime expects an RFC 3339 time such as 2025-11-03T14:30:00Z, got {}: {e}",
                    preview(value)
                ),
            )
        })?
    } else {
        let parsed = match Number::from_value(value) {
            Some(Number::Int(secs)) => i64::try_from(secs)
                .ok()
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok()),
            Some(Number::Float(secs)) if secs.is_finite() => {
                OffsetDateTime::from_unix_timestamp_nanos((secs * 1e9).round() as i128).ok()
            }
            Some(Number::Float(_)) => None,
            None => {
                return Err(expected(
                    "datetime",
                    "an RFC 3339 time or a unix timestamp",
                    value,
                ));
            }
        };
        parsed.ok_or_else(|| expected("datetime", "a unix timestamp (seconds) in range", value))?
    };
    let at = at.to_offset(UtcOffset::UTC);
    let formatted = match format {
        None => at.format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        )),
        Some(description) => {
            let items =
                time::format_description::parse_borrowed::<2>(description).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        format!("datetime: invalid format description {description:?}: {e}"),
                    )
                })?;
            at.format(&items)
        }
    };
    formatted.map_err(|e| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("datetime: cannot format {at}: {e}"),
        )
    })
}

/// `debug` 🔍, `info` ℹ️, `warning` ⚠️, `error` ❌, `critical` 🚨 (any letter case).
fn severity_emoji(state: &State, value: &Value) -> Result<&'static str, Error> {
    reject_undefined(state, value)?;
    let emoji = value.as_str().and_then(|s| {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "debug" => "🔍",
            "info" => "ℹ️",
            "warning" => "⚠️",
            "error" => "❌",
            "critical" => "🚨",
            _ => return None,
        })
    });
    emoji.ok_or_else(|| {
        expected(
            "severity_emoji",
            "one of debug, info, warning, error, critical",
            value,
        )
    })
}

/// The most characters `truncate` cuts to by default (Jinja's default).
const TRUNCATE_DEFAULT: i64 = 255;

/// `v|truncate(80)`: the value as text, at most 80 characters (Unicode code points),
/// the last of them `…` when it was cut; `truncate(80, end='...')` ends a cut text in
/// `...` instead. Unlike Jinja's `truncate`, the limit is exact (no leeway, no looking
/// for a word boundary), so a template can promise a length. The text is cut before it
/// is escaped for the sink's markup, so an entity (`&amp;`) is never cut in half; the
/// escaped text may be longer. Numbers and booleans are written out first, none is
/// empty; a list or map is refused.
fn truncate(
    state: &State,
    value: &Value,
    length: Option<i64>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    reject_undefined(state, value)?;
    let length = match length {
        Some(n) => Some(n),
        None => kwargs.get::<Option<i64>>("length")?,
    }
    .unwrap_or(TRUNCATE_DEFAULT);
    let end = kwargs.get::<Option<String>>("end")?;
    kwargs.assert_all_used()?;
    let end = end.as_deref().unwrap_or("…");
    let length = usize::try_from(length).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("truncate: the length must be 0 or more, got {length}"),
        )
    })?;
    let text: Cow<'_, str> = match value.kind() {
        ValueKind::String => Cow::Borrowed(value.as_str().unwrap_or_default()),
        ValueKind::Number => Cow::Owned(value.to_string()),
        ValueKind::Bool => Cow::Owned(value.is_true().to_string()),
        ValueKind::None => Cow::Borrowed(""),
        _ => return Err(expected("truncate", "a text, number or boolean", value)),
    };
    if text.chars().nth(length).is_none() {
        return Ok(match value.kind() {
            ValueKind::String => value.clone(),
            _ => Value::from(text.into_owned()),
        });
    }
    // Room for `end` within the limit; an `end` longer than the limit is cut too.
    let keep = length.saturating_sub(end.chars().count());
    let cut_at = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
    let mut out = String::with_capacity(cut_at + end.len());
    out.push_str(&text[..cut_at]);
    out.extend(end.chars().take(length - keep));
    Ok(value_like(value, out))
}

/// `text` as a value, `|safe` when `value` was: a safe value is cut as it is, so cutting
/// markup (a macro's output) may cut a tag or an entity; cut the text, not the markup.
fn value_like(value: &Value, text: String) -> Value {
    if value.is_safe() {
        Value::from_safe_string(text)
    } else {
        Value::from(text)
    }
}

/// A number as a filter reads it: exact integers stay exact.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    /// Numbers, and strings that hold one; `None` for anything else.
    fn from_value(value: &Value) -> Option<Number> {
        match value.kind() {
            ValueKind::Number if value.is_integer() => {
                i128::try_from(value.clone()).ok().map(Number::Int)
            }
            ValueKind::Number => f64::try_from(value.clone()).ok().map(Number::Float),
            ValueKind::String => {
                let text = value.as_str()?.trim();
                if let Ok(i) = text.parse::<i128>() {
                    Some(Number::Int(i))
                } else {
                    // Rust also parses "inf" and "NaN"; the finiteness check catches them.
                    text.parse::<f64>().ok().map(Number::Float)
                }
            }
            _ => None,
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }

    /// Whether it is below zero, and its absolute value with `decimals` places.
    fn fixed(self, decimals: usize) -> (bool, String) {
        match self {
            Number::Int(i) => {
                let mut digits = i.unsigned_abs().to_string();
                if decimals > 0 {
                    digits.push('.');
                    digits.extend(std::iter::repeat_n('0', decimals));
                }
                (i < 0, digits)
            }
            Number::Float(f) => (f < 0.0, format!("{:.*}", decimals, f.abs())),
        }
    }
}

/// The value as a finite number, or an error naming `filter`.
fn to_number(state: &State, filter: &str, value: &Value) -> Result<Number, Error> {
    reject_undefined(state, value)?;
    match Number::from_value(value) {
        Some(Number::Float(f)) if !f.is_finite() => Err(expected(filter, "a finite number", value)),
        Some(n) => Ok(n),
        None => Err(expected(filter, "a number", value)),
    }
}

/// A missing field given to a filter fails the way printing it does (strict mode), so
/// the error names the field rather than the filter.
fn reject_undefined(state: &State, value: &Value) -> Result<(), Error> {
    if value.is_undefined() {
        StringInput::new(state, value)?;
    }
    Ok(())
}

fn decimals(filter: &str, places: Option<i64>, default: usize) -> Result<usize, Error> {
    match places {
        None => Ok(default),
        Some(p) if (0..=MAX_DECIMALS).contains(&p) => Ok(p as usize),
        Some(p) => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("{filter}: decimals must be between 0 and {MAX_DECIMALS}, got {p}"),
        )),
    }
}

/// `-` for a negative number, `+` for a positive one when `signed`; nothing for a
/// number that rounds to zero.
fn sign(negative: bool, signed: bool, digits: &str) -> &'static str {
    let zero = digits.bytes().all(|b| b == b'0' || b == b'.');
    match (zero, negative, signed) {
        (true, _, _) => "",
        (false, true, _) => "-",
        (false, false, true) => "+",
        (false, false, false) => "",
    }
}

/// `1234567.50` → `1,234,567.50`.
fn group_thousands(digits: &str) -> String {
    let (int, frac) = match digits.find('.') {
        Some(dot) => digits.split_at(dot),
        None => (digits, ""),
    };
    let mut out = String::with_capacity(digits.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out.push_str(frac);
    out
}

fn expected(filter: &str, what: &str, value: &Value) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("{filter} expects {what}, got {}", preview(value)),
    )
}

/// `string "abc"`, `bool true`, ...: what a filter got, cut short so an error message
/// never carries a whole payload.
fn preview(value: &Value) -> String {
    const MAX: usize = 40;
    let text = match (value.as_str(), value.kind()) {
        (Some(s), _) => format!("{s:?}"),
        // minijinja prints booleans the Python way (`True`); events are JSON.
        (None, ValueKind::Bool) => value.is_true().to_string(),
        (None, _) => value.to_string(),
    };
    let mut cut: String = text.chars().take(MAX).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    format!("{} {cut}", value.kind())
}

#[cfg(test)]
mod tests {
    use minijinja::{UndefinedBehavior, context};

    use super::*;

    fn env() -> Environment<'static> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_debug(true);
        register(&mut env);
        env
    }

    /// Renders `src` with `v` bound to `value`.
    fn render(src: &str, value: Value) -> Result<String, Error> {
        env().render_str(src, context!(v => value))
    }

    fn ok(src: &str, value: impl Into<Value>) -> String {
        match render(src, value.into()) {
            Ok(s) => s,
            Err(e) => panic!("{src}: {e:#}"),
        }
    }

    fn err(src: &str, value: impl Into<Value>) -> String {
        match render(src, value.into()) {
            Ok(s) => panic!("{src}: expected an error, rendered {s:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn money() {
        assert_eq!(ok("{{ v|money }}", 45000), "$45,000.00");
        assert_eq!(ok("{{ v|money }}", -1250.5), "-$1,250.50");
        assert_eq!(ok("{{ v|money('€') }}", 45000), "€45,000.00");
        assert_eq!(ok("{{ v|money(symbol='£') }}", 1.5), "£1.50");
        assert_eq!(ok("{{ v|money(signed=true) }}", 200), "+$200.00");
        assert_eq!(ok("{{ v|money(signed=true) }}", -50), "-$50.00");
        assert_eq!(ok("{{ v|money(signed=true) }}", 0), "$0.00");
        assert_eq!(ok("{{ v|money }}", 0), "$0.00");
        assert_eq!(ok("{{ v|money }}", -0.001), "$0.00");
        assert_eq!(ok("{{ v|money }}", 999.999), "$1,000.00");
        assert_eq!(ok("{{ v|money(decimals=4) }}", 0.000123), "$0.0001");
        assert_eq!(
            ok("{{ v|money }}", 12345678901234567890u64),
            "$12,345,678,901,234,567,890.00"
        );
        assert_eq!(ok("{{ v|money }}", 1e15), "$1,000,000,000,000,000.00");
        assert_eq!(ok("{{ v|money }}", "2500.5"), "$2,500.50");
        assert!(err("{{ v|money }}", "abc").contains("money expects a number, got string \"abc\""));
        let e = err("{{ v|money }}", true);
        assert!(e.contains("money expects a number, got bool true"), "{e}");
        assert!(err("{{ v|money }}", "inf").contains("money expects a finite number"));
        assert!(err("{{ v|money(sign=true) }}", 1).contains("unknown keyword argument 'sign'"));
    }

    #[test]
    fn percent() {
        assert_eq!(ok("{{ v|percent }}", 4), "+4.00%");
        assert_eq!(ok("{{ v|percent }}", -2.5), "-2.50%");
        assert_eq!(ok("{{ v|percent }}", 0), "0.00%");
        assert_eq!(ok("{{ v|percent }}", -0.001), "0.00%");
        assert_eq!(ok("{{ v|percent(1) }}", 12.345), "+12.3%");
        assert_eq!(ok("{{ v|percent(0) }}", 12345.6), "+12346%");
        assert_eq!(ok("{{ v|percent(signed=false) }}", 65), "65.00%");
        assert_eq!(ok("{{ v|percent(signed=false) }}", -65), "-65.00%");
        assert!(err("{{ v|percent }}", "x").contains("percent expects a number"));
        assert!(err("{{ v|percent(-1) }}", 1).contains("decimals must be between 0 and 20"));
    }

    #[test]
    fn qty() {
        assert_eq!(ok("{{ v|qty }}", 0.5), "0.5000");
        assert_eq!(ok("{{ v|qty }}", 2), "2.0000");
        assert_eq!(ok("{{ v|qty(8) }}", 0.00012345), "0.00012345");
        assert_eq!(ok("{{ v|qty }}", -1.25), "-1.2500");
        assert_eq!(ok("{{ v|qty }}", 0), "0.0000");
        assert_eq!(ok("{{ v|qty(0) }}", 1234567.4), "1234567");
        assert!(err("{{ v|qty }}", Value::from(())).contains("qty expects a number, got none"));
    }

    #[test]
    fn number() {
        assert_eq!(ok("{{ v|number }}", 1234.567), "1,234.57");
        assert_eq!(ok("{{ v|number(0) }}", 1234.567), "1,235");
        assert_eq!(ok("{{ v|number }}", -1234567), "-1,234,567.00");
        assert_eq!(ok("{{ v|number }}", 0), "0.00");
        assert_eq!(ok("{{ v|number }}", 100), "100.00");
        assert_eq!(ok("{{ v|number(1) }}", 1e12), "1,000,000,000,000.0");
        assert!(
            err("{{ v|number }}", vec![1, 2]).contains("number expects a number, got sequence")
        );
    }

    #[test]
    fn duration() {
        assert_eq!(ok("{{ v|duration }}", 45), "45s");
        assert_eq!(ok("{{ v|duration }}", 0), "0s");
        assert_eq!(ok("{{ v|duration }}", 200), "3m 20s");
        assert_eq!(ok("{{ v|duration }}", 180), "3m");
        assert_eq!(ok("{{ v|duration }}", 11_100), "3h 5m");
        assert_eq!(ok("{{ v|duration }}", 3_600), "1h");
        assert_eq!(ok("{{ v|duration }}", 187_200), "2d 4h");
        assert_eq!(ok("{{ v|duration }}", 172_800), "2d");
        assert_eq!(ok("{{ v|duration }}", 44.6), "45s");
        assert_eq!(ok("{{ v|duration }}", -90), "-1m 30s");
        assert_eq!(ok("{{ v|duration }}", 1e30), "213503982334601d 7h");
        assert_eq!(ok("{{ v|duration }}", "3 hours"), "3 hours");
        assert!(
            err("{{ v|duration }}", true)
                .contains("duration expects a number of seconds or a text")
        );
    }

    #[test]
    fn datetime() {
        assert_eq!(
            ok("{{ v|datetime }}", "2025-11-03T14:30:00Z"),
            "2025-11-03 14:30:00"
        );
        assert_eq!(
            ok("{{ v|datetime }}", "2025-11-03T16:30:00+02:00"),
            "2025-11-03 14:30:00"
        );
        assert_eq!(ok("{{ v|datetime }}", 1_762_180_200), "2025-11-03 14:30:00");
        assert_eq!(
            ok("{{ v|datetime }}", 1_762_180_200.9),
            "2025-11-03 14:30:00"
        );
        assert_eq!(ok("{{ v|datetime }}", 0), "1970-01-01 00:00:00");
        assert_eq!(ok("{{ v|datetime }}", -86_400), "1969-12-31 00:00:00");
        assert_eq!(
            ok(
                "{{ v|datetime('[year]-[month]-[day]') }}",
                "2025-11-03T14:30:00Z"
            ),
            "2025-11-03"
        );
        assert_eq!(
            ok(
                "{{ v|datetime('[hour]:[minute]') }}",
                "2025-11-03T14:30:00Z"
            ),
            "14:30"
        );
        assert!(err("{{ v|datetime }}", "yesterday").contains("datetime expects an RFC 3339 time"));
        assert!(err("{{ v|datetime }}", 1e20).contains("in range"));
        assert!(
            err("{{ v|datetime }}", true)
                .contains("datetime expects an RFC 3339 time or a unix timestamp")
        );
        assert!(
            err("{{ v|datetime('[yaer]') }}", "2025-11-03T14:30:00Z")
                .contains("invalid format description")
        );
    }

    #[test]
    fn severity_emoji() {
        for (severity, emoji) in [
            ("debug", "🔍"),
            ("info", "ℹ️"),
            ("warning", "⚠️"),
            ("error", "❌"),
            ("critical", "🚨"),
            ("CRITICAL", "🚨"),
        ] {
            assert_eq!(ok("{{ v|severity_emoji }}", severity), emoji);
        }
        assert!(err("{{ v|severity_emoji }}", "fatal").contains("got string \"fatal\""));
        assert!(err("{{ v|severity_emoji }}", 3).contains("severity_emoji expects one of"));
    }

    #[test]
    fn truncate() {
        assert_eq!(ok("{{ v|truncate(5) }}", "hello"), "hello");
        assert_eq!(ok("{{ v|truncate(5) }}", "hello world"), "hell…");
        assert_eq!(ok("{{ v|truncate(length=5) }}", "hello world"), "hell…");
        assert_eq!(
            ok("{{ v|truncate(6, end='...') }}", "hello world"),
            "hel..."
        );
        // Characters, not bytes: a cut never splits one.
        assert_eq!(ok("{{ v|truncate(3) }}", "ééééé"), "éé…");
        assert_eq!(ok("{{ v|truncate(2) }}", "🚀🚀🚀"), "🚀…");
        // The limit holds even for an `end` longer than it, and for 0.
        assert_eq!(ok("{{ v|truncate(2, end='...') }}", "hello"), "..");
        assert_eq!(ok("{{ v|truncate(0) }}", "hello"), "");
        assert_eq!(ok("{{ v|truncate }}", "x".repeat(300)).chars().count(), 255);
        assert_eq!(ok("{{ v|truncate(4) }}", 123456), "123…");
        assert_eq!(ok("{{ v|truncate(4) }}", true), "true");
        assert_eq!(ok("{{ v|truncate(4) }}", Value::from(())), "");
        assert!(err("{{ v|truncate(4) }}", vec![1, 2]).contains("truncate expects a text"));
        assert!(err("{{ v|truncate(-1) }}", "x").contains("0 or more, got -1"));
        assert!(err("{{ v|truncate(4, ending='') }}", "x").contains("unknown keyword argument"));
        // The text is cut before the formatter escapes it: never half an entity.
        let mut env = env();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        let out = env
            .render_str("{{ v|truncate(4) }}", context!(v => "a&<b>c"))
            .unwrap();
        assert_eq!(out, "a&amp;&lt;…");
        // A safe value stays safe (and is cut as it is).
        let out = env
            .render_str("{{ v|safe|truncate(4) }}", context!(v => "<b>xyz</b>"))
            .unwrap();
        assert_eq!(out, "<b>…");
    }

    #[test]
    fn a_missing_field_is_an_undefined_value_not_a_type_error() {
        let e = env()
            .render_str(
                "{{ event.stop_loss|money }}",
                context!(event => context!(a => 1)),
            )
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UndefinedError, "{e}");
        assert!(e.to_string().contains("event.stop_loss"), "{e}");
        for filter in [
            "percent",
            "qty",
            "number",
            "duration",
            "datetime",
            "severity_emoji",
            "truncate",
        ] {
            let e = env()
                .render_str(&format!("{{{{ x|{filter} }}}}"), context!())
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::UndefinedError, "{filter}: {e}");
        }
    }

    #[test]
    fn long_values_are_cut_in_errors() {
        let e = err("{{ v|money }}", "x".repeat(500));
        assert!(e.len() < 200, "{e}");
        assert!(e.contains('…'), "{e}");
    }
}
