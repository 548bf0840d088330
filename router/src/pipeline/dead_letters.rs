//! Dead letters: listed, put back at the end of their sinks' queues (rendered again
//! with the templates in force when they never were), or dropped.

use time::OffsetDateTime;

use super::Pipeline;
use super::ingest::render_for_sink;
use crate::event::format_time;
use crate::outbox::{DeadLetter, OutboxError, Requeue, Selector};
use crate::render;

/// What retrying dead letters did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Retried {
    /// Dead letters put back at the end of their sinks' queues.
    pub retried: usize,
    /// Dead letters that stay, with why (`seq`, id, reason).
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Skipped {
    pub seq: i64,
    pub id: String,
    pub reason: String,
}

impl Pipeline {
    /// Dead letters, newest first.
    pub fn dead_letters(
        &self,
        selector: &Selector,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, OutboxError> {
        self.outbox.dead_letters(selector, limit)
    }

    /// Puts the dead letters `selector` picks back at the end of their sinks' queues.
    /// A letter that was never rendered is rendered now, with the templates in force (so
    /// a fixed template takes effect); one whose sink is not running stays.
    pub fn retry_dead_letters(&self, selector: &Selector) -> Result<Retried, OutboxError> {
        let snap = self.snapshot.load_full();
        let now = format_time(OffsetDateTime::now_utc());
        let mut requeue = Vec::new();
        let mut out = Retried::default();
        for letter in self.outbox.dead_letters(selector, usize::MAX)? {
            let mut skip = |reason: String| {
                out.skipped.push(Skipped {
                    seq: letter.seq,
                    id: letter.id.clone(),
                    reason,
                })
            };
            let Some(entry) = snap.sinks.get(&letter.sink) else {
                skip(format!("sink `{}` is not running", letter.sink));
                continue;
            };
            let payload = match &letter.payload_text {
                Some(_) => None,
                None => {
                    match render_for_sink(&snap, entry, &letter.sink, &letter.template, |plugin| {
                        render::context_with(
                            render::json_value(&letter.event),
                            &letter.route,
                            &letter.sink,
                            plugin,
                            &now,
                        )
                    }) {
                        Ok(p) => Some(p),
                        Err(e) => {
                            skip(e);
                            continue;
                        }
                    }
                }
            };
            requeue.push(Requeue {
                seq: letter.seq,
                payload,
            });
        }
        out.retried = self.outbox.requeue(requeue)?;
        Ok(out)
    }

    /// Deletes the dead letters `selector` picks.
    pub fn drop_dead_letters(&self, selector: Selector) -> Result<usize, OutboxError> {
        self.outbox.drop_dead(selector)
    }
}
