//! The in-flight record's format (outbox/in_flight.rs): 32 bytes, what a sink's attempt
//! file holds. Its own module because two writers share it: the worker, and the crash
//! handler (outbox/crash_signals.rs), which writes a `Crashed` record from the signal
//! handler.

const MAGIC: &[u8; 4] = b"ARIF";
pub(super) const LEN: usize = 32;

/// What a record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Idle = 0,
    /// Inside `deliver`.
    Delivering = 1,
    /// Shutdown left the worker inside `deliver` (a hung plugin).
    Abandoned = 2,
    /// The process got a crash signal on the delivering thread.
    Crashed = 3,
}

/// One record, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Record {
    pub(super) state: State,
    /// The crash signal, for `Crashed`.
    pub(super) signal: u8,
    /// The plugin runs in a process of its own: the router's death is not its doing.
    pub(super) isolated: bool,
    pub(super) seq: i64,
    pub(super) attempt: u32,
    /// The last message this sink's plugin delivered (0: none yet). The worker delivers in
    /// order, so every waiting message up to it was delivered, whatever marks the
    /// database has: after a crash they are marked, not sent again.
    pub(super) delivered: i64,
}

impl Record {
    pub(super) fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[..4].copy_from_slice(MAGIC);
        b[4] = self.state as u8;
        b[5] = self.signal;
        b[6] = u8::from(self.isolated);
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..20].copy_from_slice(&self.attempt.to_le_bytes());
        b[24..32].copy_from_slice(&self.delivered.to_le_bytes());
        b
    }

    pub(super) fn decode(b: &[u8]) -> Option<Record> {
        if b.len() < LEN || &b[..4] != MAGIC {
            return None;
        }
        let state = match b[4] {
            0 => State::Idle,
            1 => State::Delivering,
            2 => State::Abandoned,
            3 => State::Crashed,
            _ => return None,
        };
        Some(Record {
            state,
            signal: b[5],
            isolated: b[6] != 0,
            seq: i64::from_le_bytes(b[8..16].try_into().ok()?),
            attempt: u32::from_le_bytes(b[16..20].try_into().ok()?),
            delivered: i64::from_le_bytes(b[24..32].try_into().ok()?),
        })
    }
}
