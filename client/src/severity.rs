//! [`Severity`]: how urgent an event is, as the router reads it off the wire.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How urgent an event is. Ordered: `debug < info < warning < error < critical`.
///
/// The router's `alert_router::event::Severity` has the same five values and the same wire
/// format: a lowercase name, read in any case, with `warn` and `crit` as short forms. The
/// client keeps its own copy so that a producer linking this crate links nothing of the
/// daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// `debug`
    Debug,
    /// `info`: the router's default for every type but `error`.
    Info,
    /// `warning`
    Warning,
    /// `error`: the router's default for `type: error`.
    Error,
    /// `critical`
    Critical,
}

impl Severity {
    /// Every severity, least urgent first.
    pub const ALL: [Severity; 5] = [
        Severity::Debug,
        Severity::Info,
        Severity::Warning,
        Severity::Error,
        Severity::Critical,
    ];

    /// The name the router reads: `debug`, `info`, `warning`, `error` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Debug => "debug",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

/// A text that names no severity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSeverity(String);

impl fmt::Display for UnknownSeverity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown severity {:?}: use one of debug, info, warning, error, critical",
            self.0
        )
    }
}

impl std::error::Error for UnknownSeverity {}

impl FromStr for Severity {
    type Err = UnknownSeverity;

    /// Case-insensitive; `warn` and `crit` are accepted, as the router accepts them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "debug" => Ok(Severity::Debug),
            "info" => Ok(Severity::Info),
            "warning" | "warn" => Ok(Severity::Warning),
            "error" => Ok(Severity::Error),
            "critical" | "crit" => Ok(Severity::Critical),
            _ => Err(UnknownSeverity(s.to_owned())),
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Severity {
    fn serialize<S: Serializer>(&self, out: S) -> Result<S::Ok, S::Error> {
        out.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_are_ordered_and_read_as_the_router_reads_them() {
        assert!(Severity::Debug < Severity::Info && Severity::Error < Severity::Critical);
        assert_eq!("WARNING".parse::<Severity>(), Ok(Severity::Warning));
        assert_eq!("Crit".parse::<Severity>(), Ok(Severity::Critical));
        let err = "loud".parse::<Severity>().expect_err("not a severity");
        assert!(err.to_string().contains("debug, info"), "{err}");
    }

    #[test]
    fn severities_travel_as_lowercase_names() {
        for s in Severity::ALL {
            let json = serde_json::to_value(s).expect("encodes");
            assert_eq!(json, serde_json::json!(s.as_str()));
            assert_eq!(
                serde_json::from_value::<Severity>(json).expect("decodes"),
                s
            );
        }
        let err = serde_json::from_str::<Severity>(r#""loud""#).expect_err("not a severity");
        assert!(err.to_string().contains("unknown severity"), "{err}");
    }
}
