//! [`DurationSetting`]: a duration in a plugin's settings, read the way router.yaml
//! reads its own, so every duration an operator writes means the same.

use std::borrow::Cow;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A duration as the operator wrote it in a sink's settings: `"10s"`, `"500ms"`, `"1m"`,
/// `"1.5s"` (see [`parse_duration`](crate::parse_duration)) or a number of seconds
/// (`3`, `0.5`). Deserializing only takes the text or the number; [`within`] reads and
/// checks it, so the error can name the setting.
///
/// ```
/// use std::time::Duration;
/// use alert_router_plugin::DurationSetting;
///
/// #[derive(serde::Deserialize)]
/// struct Settings { timeout: Option<DurationSetting> }
///
/// let settings: Settings = serde_json::from_str(r#"{"timeout": "1.5s"}"#).unwrap();
/// let timeout = settings
///     .timeout
///     .map_or(Ok(Duration::from_secs(10)), |t| {
///         t.within(Duration::from_millis(1), Duration::from_secs(300))
///     })
///     .map_err(|e| format!("settings.timeout: {e}"));
/// assert_eq!(timeout, Ok(Duration::from_millis(1500)));
/// ```
///
/// [`within`]: DurationSetting::within
#[derive(Debug, Clone)]
pub struct DurationSetting(Written);

#[derive(Debug, Clone)]
enum Written {
    Seconds(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for DurationSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Either;
        impl Visitor<'_> for Either {
            type Value = Written;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration such as \"10s\" or \"500ms\", or a number of seconds")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Written, E> {
                Ok(Written::Seconds(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Written, E> {
                Ok(Written::Seconds(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Written, E> {
                Ok(Written::Seconds(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Written, E> {
                Ok(Written::Text(v.to_owned()))
            }
        }
        deserializer.deserialize_any(Either).map(DurationSetting)
    }
}

/// Text or a number of seconds, as [`Deserialize`] takes it.
impl JsonSchema for DurationSetting {
    fn schema_name() -> Cow<'static, str> {
        "DurationSetting".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": ["string", "number"]})
    }
}

impl DurationSetting {
    /// The duration, if it reads as one and lies between `min` and `max` (both
    /// included). The error says what is wrong and what to write, without the
    /// setting's name: prefix it (`settings.timeout: ...`).
    pub fn within(&self, min: Duration, max: Duration) -> Result<Duration, String> {
        let seconds = match &self.0 {
            Written::Seconds(s) => *s,
            Written::Text(text) => crate::parse_duration(text)?.as_secs_f64(),
        };
        let (low, high) = (min.as_secs_f64(), max.as_secs_f64());
        if !seconds.is_finite() || seconds < low || seconds > high {
            return Err(format!(
                "must be between {} and {}",
                written(min),
                written(max)
            ));
        }
        // Within [min, max], so it converts; a failure would still be an error, not a panic.
        Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("must be at most {}", written(max)))
    }
}

/// A duration as an operator would write it: `300s`, `1ms`, `1.5s`.
fn written(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) && d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<Duration, String> {
        let setting: DurationSetting = serde_json::from_str(json).map_err(|e| e.to_string())?;
        setting.within(Duration::from_millis(1), Duration::from_secs(300))
    }

    #[test]
    fn text_and_numbers_read_as_router_yaml_reads_them() {
        for (json, millis) in [
            (r#""10s""#, 10_000),
            (r#""500ms""#, 500),
            (r#""1m""#, 60_000),
            (r#""1.5s""#, 1500),
            (r#"" 2 ""#, 2000),
            ("3", 3000),
            ("0.25", 250),
            (r#""300s""#, 300_000),
            (r#""1ms""#, 1),
        ] {
            assert_eq!(read(json), Ok(Duration::from_millis(millis)), "{json}");
        }
    }

    #[test]
    fn errors_say_what_to_write() {
        for (json, want) in [
            (r#""10 parsecs""#, "unknown unit \"parsecs\""),
            (r#""soon""#, "is not a duration: write e.g. 500ms"),
            (r#""0s""#, "must be between 1ms and 300s"),
            ("0", "must be between 1ms and 300s"),
            ("-1", "must be between 1ms and 300s"),
            (r#""1h""#, "must be between 1ms and 300s"),
            ("true", "expected a duration such as \"10s\""),
        ] {
            let error = read(json).unwrap_err();
            assert!(error.contains(want), "{json}: {error}");
        }
        assert_eq!(written(Duration::from_millis(1500)), "1.5s");
    }
}
