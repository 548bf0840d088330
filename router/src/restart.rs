//! What a reload cannot change: the address the HTTP API listens on and the storage the
//! outbox and the state were opened with. [`Fixed`] records them when the router starts;
//! a reload applies everything else and asks [`Fixed::restart_needed`] which keys of the
//! new config differ from the values in force, to say so (log, answer, `/v1/status`)
//! until a restart applies them.

use std::net::SocketAddr;

use crate::config::{Config, Storage};

/// Where the API listens, and who said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listen {
    /// `server.listen`: a restart takes the file's value.
    Config(SocketAddr),
    /// `run --listen`: it overrides the file, now and at a restart on the same command line.
    Flag(SocketAddr),
}

/// The settings a running router keeps until it restarts.
#[derive(Debug, Clone)]
pub struct Fixed {
    listen: Listen,
    storage: Storage,
}

impl Fixed {
    /// What `config` starts with; `listen_flag` is `run --listen`, which overrides
    /// `server.listen`.
    pub fn new(config: &Config, listen_flag: Option<SocketAddr>) -> Fixed {
        Fixed {
            listen: match listen_flag {
                Some(addr) => Listen::Flag(addr),
                None => Listen::Config(config.server.listen),
            },
            storage: config.storage.clone(),
        }
    }

    /// The storage in force: the outbox's and the state's directory and limits.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The keys of `config` whose value differs from the one in force, in the order
    /// router.yaml lists them. Values are left out: the caller may show them or not.
    pub fn restart_needed(&self, config: &Config) -> Vec<&'static str> {
        let (now, file) = (&self.storage, &config.storage);
        let mut keys = Vec::new();
        if matches!(self.listen, Listen::Config(addr) if addr != config.server.listen) {
            keys.push("server.listen");
        }
        let storage = [
            ("storage.path", now.path != file.path),
            ("storage.sync", now.sync != file.sync),
            (
                "storage.max_messages",
                now.max_messages != file.max_messages,
            ),
            ("storage.max_bytes", now.max_bytes != file.max_bytes),
            (
                "storage.keep_delivered",
                now.keep_delivered != file.keep_delivered,
            ),
            (
                "storage.keep_dead_letters",
                now.keep_dead_letters != file.keep_dead_letters,
            ),
            (
                "storage.dedup_window",
                now.dedup_window != file.dedup_window,
            ),
        ];
        keys.extend(
            storage
                .into_iter()
                .filter(|(_, differs)| *differs)
                .map(|(k, _)| k),
        );
        keys
    }

    /// What a reload from `old` to `new` says about `server.listen`, if it changed in
    /// the file: a restart applies it, or `--listen` overrides it anyway.
    pub fn listen_change(&self, old: &Config, new: &Config) -> Option<String> {
        let (was, is) = (old.server.listen, new.server.listen);
        if was == is {
            return None;
        }
        Some(match self.listen {
            Listen::Config(running) => format!(
                "server.listen changed from {was} to {is}: it takes effect at the next restart; the API still listens on {running}"
            ),
            Listen::Flag(flag) => format!(
                "server.listen changed from {was} to {is}, but `--listen {flag}` overrides it"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::SyncMode;

    fn config(listen: &str) -> Config {
        let text = format!("server: {{listen: \"{listen}\"}}\n");
        Config::parse(std::path::Path::new("router.yaml"), &text, &|_| None)
            .expect("a valid config")
    }

    #[test]
    fn only_keys_that_differ_from_the_running_values_need_a_restart() {
        let started = config("127.0.0.1:9470");
        let fixed = Fixed::new(&started, None);
        assert!(fixed.restart_needed(&started).is_empty());

        let mut edited = config("0.0.0.0:9470");
        edited.storage.sync = SyncMode::Normal;
        edited.storage.dedup_window = Duration::from_secs(60);
        edited.server.max_body_bytes = 1; // applied by a reload
        assert_eq!(
            fixed.restart_needed(&edited),
            ["server.listen", "storage.sync", "storage.dedup_window"]
        );
        // Changed back: nothing to restart for.
        assert!(fixed.restart_needed(&started).is_empty());
    }

    #[test]
    fn a_listen_flag_overrides_the_file_now_and_after_a_restart() {
        let started = config("127.0.0.1:9470");
        let fixed = Fixed::new(&started, Some("127.0.0.1:0".parse().expect("an address")));
        let edited = config("127.0.0.1:9999");
        assert!(fixed.restart_needed(&edited).is_empty());
        let said = fixed.listen_change(&started, &edited).unwrap_or_default();
        assert!(
            said.contains("`--listen 127.0.0.1:0` overrides it"),
            "{said}"
        );

        let fixed = Fixed::new(&started, None);
        let said = fixed.listen_change(&started, &edited).unwrap_or_default();
        assert!(
            said.contains("takes effect at the next restart")
                && said.contains("still listens on 127.0.0.1:9470"),
            "{said}"
        );
        assert_eq!(fixed.listen_change(&started, &started), None);
    }
}
