//! The alert-router sink plugin ABI, and a Rust SDK for writing plugins against it.
//!
//! A plugin is a shared library that the router loads at run time to deliver messages
//! somewhere: a chat, a webhook, a file. The ABI is plain C, defined by
//! `include/alert_router_plugin.h` in this crate, so plugins can be written in any
//! language that exports C functions. This crate mirrors the header in [`ffi`] and
//! wraps it in a safe API:
//!
//! - implement [`Sink`] (settings, `create`, `deliver`);
//! - call the router back through [`Host`] (`log`, `query`, `emit`, `render`, and
//!   `request` to change its data, such as a silence; a failed call is a [`HostError`]
//!   whose [`HostErrorKind`] says what to do), and tell it how the sink is doing outside
//!   deliveries (`report_healthy`, `report_unhealthy`);
//! - export it with [`export_plugin!`], which generates the C entry points and catches
//!   every panic at the boundary;
//! - keep tokens and passwords in [`Secret`], which never prints its value.
//!
//! Build the crate as a `cdylib` whose library name is the plugin's name:
//!
//! ```toml
//! [lib]
//! name = "shout"            # gives libshout.so
//! crate-type = ["cdylib"]
//! ```
//!
//! and drop `libshout.so` into one of the router's plugin directories. A running
//! router picks it up on its next reload. See [`Sink`] for a complete plugin.

mod duration;
pub mod export;
mod exported;
pub mod ffi;
mod host;
#[cfg(feature = "http")]
pub mod http;
mod progress;
pub mod schema;
mod secret;
mod sink;

pub use duration::DurationSetting;
pub use exported::Exported;
pub use host::{Host, HostError, HostErrorKind, Level};
pub use progress::{Progress, Resume};
pub use secret::{Secret, redact};

/// Parses a duration as router.yaml writes them: `500ms`, `30s`, `5m`, `2h`, `1d`, or a
/// plain number of seconds. Plugins use it for their own settings, so every duration an
/// operator writes reads the same.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    /// 100 years (36500 days).
    const MAX_DURATION_SECS: f64 = 36_500.0 * 86_400.0;
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration: write e.g. 500ms, 30s, 5m, 2h"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?}: use ms, s, m, h or d"
            ));
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{s:?} is not a duration"));
    }
    // Anything longer is a typo, and would overflow the clock arithmetic of whoever waits
    // that long (from_secs_f64 itself panics past about 584 billion years).
    if secs > MAX_DURATION_SECS {
        return Err(format!(
            "{s:?} is longer than 100 years; write at most 36500d"
        ));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// Decodes one `application/x-www-form-urlencoded` component (a query string's key or
/// value): `+` is a space, `%XX` a byte. `None` for a broken escape or bytes that are not
/// UTF-8. The router and plugins that serve HTTP read query strings the same way.
pub fn form_decode(s: &str) -> Option<String> {
    // percent-encoding leaves a broken escape as it is; refuse it instead, so a caller can
    // say "percent-encode it" rather than act on a value the sender did not mean.
    let bytes = s.as_bytes();
    let escapes_whole = bytes.iter().enumerate().all(|(i, b)| {
        *b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !escapes_whole {
        return None;
    }
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

/// An error and its causes on one line, each cause once: what a delivery's `reason`
/// should say about a transport failure (HTTP clients keep the useful part, "connection
/// refused", in the source chain). Strip secrets (URLs with tokens) before calling it.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
pub use sink::{Message, Outcome, Sink};

#[cfg(test)]
mod tests {
    #[test]
    fn a_duration_too_long_to_wait_is_an_error_not_a_panic() {
        use super::parse_duration;
        for huge in [
            "99999999999999999999999d",
            "99999999999999999999999999999999999s",
            "36501d",
        ] {
            let error = parse_duration(huge).expect_err(huge);
            assert!(
                error.contains("longer than 100 years") || error.contains("not a duration"),
                "{huge}: {error}"
            );
        }
        assert_eq!(
            parse_duration("36500d"),
            Ok(std::time::Duration::from_secs(36_500 * 86_400))
        );
    }

    #[test]
    fn form_components_are_decoded() {
        use super::form_decode as decode;
        assert_eq!(decode("BTC%2FUSDT").as_deref(), Some("BTC/USDT"));
        assert_eq!(decode("a+b").as_deref(), Some("a b"));
        assert_eq!(decode("%E2%9C%85").as_deref(), Some("✅"));
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode("%4"), None);
        assert_eq!(decode("%FF"), None);
        // A sign is not a hex digit: `%+1` is a broken escape, not the byte 1.
        assert_eq!(decode("%+1"), None);
        assert_eq!(decode("%-1"), None);
        assert_eq!(decode("a+b%2Bc").as_deref(), Some("a b+c"));
    }

    use std::fmt;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn error_chain_says_each_cause_once() {
        let e = Layer(
            "error sending request",
            Some(Box::new(Layer(
                "client error (Connect)",
                Some(Box::new(Layer("Connection refused", None))),
            ))),
        );
        assert_eq!(
            super::error_chain(&e),
            "error sending request: client error (Connect): Connection refused"
        );
        let repeats = Layer(
            "timed out: deadline",
            Some(Box::new(Layer("deadline", None))),
        );
        assert_eq!(super::error_chain(&repeats), "timed out: deadline");
    }
}
