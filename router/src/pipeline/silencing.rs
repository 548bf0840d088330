//! Setting and expiring silences on request: one place for `POST /v1/silences`,
//! `DELETE /v1/silences/{id}` and a plugin's `request` (a Telegram admin's `/silence`),
//! so the body is read, the change stored and logged the same way whoever asks.
//! Both write to SQLite: call them off the async runtime.

use crate::notify::silences::{NewSilence, SilenceError, SilenceView};

use super::Pipeline;

/// A silence set by [`Pipeline::set_silence`].
pub struct SetSilence {
    pub silence: SilenceView,
    /// A new silence (the body had no `id`), not a change to one.
    pub created: bool,
}

impl Pipeline {
    /// Sets the silence `body` describes (the JSON of `POST /v1/silences`: see
    /// [`NewSilence`]). `via` says who passed the request on, for the log: `api`, or the
    /// sink whose plugin asked.
    pub fn set_silence(&self, body: &[u8], via: &str) -> Result<SetSilence, SilenceError> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| SilenceError::Invalid {
                field: None,
                message: format!("the body is not JSON: {e}"),
            })?;
        let new = NewSilence::from_json(value)?;
        let created = new.id.is_none();
        let silence = self.notifier.silences.add(new, crate::clock::now())?;
        tracing::info!(id = %silence.silence.id, by = %silence.silence.created_by, via, "silence set");
        Ok(SetSilence { silence, created })
    }

    /// Expires silence `id` now (it stays listed, as expired). `via` as for
    /// [`Pipeline::set_silence`].
    pub fn expire_silence(&self, id: &str, via: &str) -> Result<SilenceView, SilenceError> {
        let silence = self.notifier.silences.expire(id, crate::clock::now())?;
        tracing::info!(id = %silence.silence.id, via, "silence expired");
        Ok(silence)
    }
}
