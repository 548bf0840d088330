//! The start-up check of a sink that does not answer commands: a `getMe`, repeated with
//! a growing wait until Telegram answers, so the router's status shows a refused token
//! or an unreachable Bot API before the first notification does (`Client::get_me`
//! reports each result). A sink that answers commands needs no such check: its polling
//! loop starts with the same `getMe`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::Shared;
use crate::client::{Verdict, verdict};

/// The wait after the first failed check; it doubles up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_secs(1);
const MAX_WAIT: Duration = Duration::from_secs(60);

/// Runs `getMe` until it succeeds, Telegram refuses the token (no retry fixes that: a
/// reload with a new token makes a new sink) or `stop` says the sink is going away.
pub(crate) async fn check(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut wait = FIRST_WAIT;
    loop {
        let answer = tokio::select! {
            _ = stop.changed() => return,
            answer = shared.client.get_me() => answer,
        };
        let Err(error) = answer else {
            return;
        };
        let verdict = verdict(&error, shared.client.token());
        if verdict.is_unauthorized() {
            shared.error(&format!(
                "getMe: {}; every notification will fail the same way until it is fixed",
                verdict.reason()
            ));
            return;
        }
        let pause = match &verdict {
            Verdict::Retry {
                after: Some(after), ..
            } => *after,
            _ => wait,
        };
        shared.warn(&format!(
            "cannot check the bot yet (getMe: {}); trying again in {}s",
            verdict.reason(),
            pause.as_secs()
        ));
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        wait = (wait * 2).min(MAX_WAIT);
    }
}
