//! The console sink: prints each message to stdout, or appends it to a file.
//!
//! Its settings are [`Settings`].
//!
//! The demo and the end-to-end tests use it: a file in `json` format is an exact record
//! of what was delivered, in order.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use alert_router_plugin::{Host, Message, Outcome, Sink, export_plugin};
use schemars::JsonSchema;
use serde::Deserialize;

/// A console sink's `settings` in router.yaml; the plugin's manifest describes them from
/// this type.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// File to append to; stdout when absent. Created if missing, relative to the
    /// router's working directory.
    #[serde(default)]
    path: Option<String>,
    /// text (default) or json. `text` writes the payload's `text` field, or the payload
    /// as JSON when it has none, followed by a blank line; `json` writes the whole
    /// message (`id`, `sink`, `attempt`, `payload`, `event`) as one JSON line.
    #[serde(default)]
    format: Format,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Format {
    #[default]
    Text,
    Json,
}

pub struct Console {
    out: Output,
    format: Format,
}

enum Output {
    Stdout,
    File(File),
}

impl Sink for Console {
    type Settings = Settings;

    /// A file path must be one that can be created or appended to: its directory exists
    /// and it is not itself a directory. Opening it (which creates it) is `create`'s.
    fn validate(settings: &Settings) -> Result<(), String> {
        let Some(path) = settings.path.as_deref().filter(|p| *p != "-") else {
            return Ok(());
        };
        let file = Path::new(path);
        if file.is_dir() {
            return Err(format!(
                "settings.path: {path} is a directory; name a file in it"
            ));
        }
        // "out.txt" has the parent "": the working directory, which exists.
        match file.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            Some(dir) if !dir.is_dir() => Err(format!(
                "settings.path: {} is not a directory; create it or fix the path",
                dir.display()
            )),
            _ => Ok(()),
        }
    }

    fn create(_host: Host, settings: Settings) -> Result<Self, String> {
        let out = match settings.path.as_deref() {
            None | Some("-") => Output::Stdout,
            Some(path) => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("settings.path: cannot open {path} for appending: {e}"))?;
                Output::File(file)
            }
        };
        Ok(Console {
            out,
            format: settings.format,
        })
    }

    fn deliver(&mut self, message: Message) -> Outcome {
        let record = match self.format {
            Format::Text => {
                let text = match message.payload.get("text").and_then(|t| t.as_str()) {
                    Some(text) => text.trim_end().to_owned(),
                    None => message.payload.to_string(),
                };
                format!("{text}\n\n")
            }
            Format::Json => {
                let line = serde_json::json!({
                    "id": message.id,
                    "sink": message.sink,
                    "attempt": message.attempt,
                    "payload": message.payload,
                    "event": message.event,
                });
                format!("{line}\n")
            }
        };
        // One write call per message, so concurrent writers never interleave lines.
        let written = match &mut self.out {
            Output::Stdout => {
                let mut stdout = io::stdout().lock();
                stdout
                    .write_all(record.as_bytes())
                    .and_then(|_| stdout.flush())
            }
            Output::File(file) => file.write_all(record.as_bytes()),
        };
        match written {
            Ok(()) => Outcome::Ok,
            Err(e) => Outcome::retry(format!("write failed: {e}")),
        }
    }
}

export_plugin!(
    Console,
    name = "console",
    markup = "none",
    description = "Prints messages to stdout or appends them to a file",
);

#[cfg(test)]
mod tests {
    #[test]
    fn the_manifest_is_for_plain_text_and_holds_no_secret() {
        let plugin = alert_router_plugin::exported_plugin!().expect("a readable descriptor");
        assert_eq!(plugin.name, "console");
        assert_eq!(plugin.markup(), Some("none"));
        assert!(plugin.secret_settings().is_empty());
    }
}
