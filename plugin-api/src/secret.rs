//! [`Secret`]: a value that must never be printed, for the router and plugins alike.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;

/// A token, password or signing key. `Debug` and `Display` print `***`, so a secret
/// inside settings, errors or log lines shows as that; [`Secret::expose`] hands the value
/// to the one place that needs it. Deserializes from a plain string.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is the secret, in time that does not depend on where the two
    /// differ (for checking a token someone presents).
    pub fn matches(&self, candidate: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), candidate.as_bytes());
        let mut diff = a.len() ^ b.len();
        for (i, x) in a.iter().enumerate() {
            diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
        }
        diff == 0
    }
}

/// `text` with every occurrence of each of `secrets` replaced by `***`, longest first (so
/// a secret inside a longer one leaves no part of the longer one); empty ones are
/// skipped. For every reason and log line a plugin writes, whatever produced the text: an
/// upstream may echo a URL, a header or a password back.
pub fn redact<'a>(text: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
    let mut secrets: Vec<&str> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut text = text.to_owned();
    for secret in secrets {
        if text.contains(secret) {
            text = text.replace(secret, "***");
        }
    }
    text
}

/// A string whose schema carries [`SECRET_KEYWORD`](crate::schema::SECRET_KEYWORD), so a
/// setting of this type (or a map or list of them) is declared `secret` in the manifest.
impl JsonSchema for Secret {
    fn schema_name() -> Cow<'static, str> {
        "Secret".into()
    }

    // In place, so `Option<Secret>` reads `["string", "null"]` with the mark beside it.
    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", (crate::schema::SECRET_KEYWORD): true})
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_and_deserializes_from_a_string() {
        let s: Secret = serde_json::from_str("\"hunter2\"").expect("a string");
        assert_eq!(format!("{s} {s:?} {:?}", Some(&s)), "*** *** Some(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn the_comparison_wants_every_byte() {
        let t = Secret::new("abc123");
        assert!(t.matches("abc123"));
        for wrong in ["", "abc12", "abc1234", "abc124", "ABC123"] {
            assert!(!t.matches(wrong), "{wrong}");
        }
    }

    #[test]
    fn redact_hides_the_longest_secret_whole_and_skips_empty_ones() {
        // "abc" is inside "abcdef": replaced first, it would leave "***def".
        let text = "GET /abcdef?key=abc failed";
        assert_eq!(
            redact(text, ["abc", "", "abcdef"]),
            "GET /***?key=*** failed"
        );
        assert_eq!(redact(text, [""]), text);
    }
}
