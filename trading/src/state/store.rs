//! [`StateStore`]: the shared handle the pipeline applies events to and the API, the CLI
//! and plugins query; it ties the in-memory book to its optional persistence.

use std::fmt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::Value;
use time::OffsetDateTime;

use super::book::{self, Book, Change};
use super::error::{QueryError, StateError};
use super::persist::{self, Writer};
use super::query;
use alert_router_domain::EventRef;

/// The state of the trading the router watches. `Send + Sync`; share it as an `Arc`.
///
/// [`apply`](StateStore::apply) updates memory at once and hands the change to a
/// background writer, which commits in batches; queries always see everything applied.
/// Dropping the store saves what is pending and stops the writer.
pub struct StateStore {
    book: Mutex<Book>,
    writer: Option<Writer>,
}

impl StateStore {
    /// Opens the store kept in `dir/state.db`, creating the directory and the database if
    /// needed, and loads the state saved by the previous run.
    pub fn open(dir: &Path) -> Result<StateStore, StateError> {
        let (book, writer) = persist::open(dir)?;
        Ok(StateStore {
            book: Mutex::new(book),
            writer: Some(writer),
        })
    }

    /// A store that keeps nothing on disk (tests, and the `route` and `render` commands).
    pub fn in_memory() -> StateStore {
        StateStore {
            book: Mutex::new(Book::default()),
            writer: None,
        }
    }

    /// Whether events of type `kind` change the state (the trading types).
    pub fn tracks(kind: &str) -> bool {
        book::is_tracked(kind)
    }

    /// Applies one accepted event of any type. The trading types update the state; any
    /// other type returns after one type check. Never blocks on disk, except when the
    /// writer has fallen thousands of changes behind (backpressure, not unbounded memory).
    pub fn apply<'a>(&self, event: impl Into<EventRef<'a>>) {
        let event = event.into();
        if !book::is_tracked(event.kind) {
            return;
        }
        let mut book = self.lock();
        match &self.writer {
            // Sent while the lock is held, so the writer sees changes in the same order
            // as memory does.
            Some(writer) => {
                let mut send = |change: Change| writer.send(change);
                book.apply(event, Some(&mut send));
            }
            None => book.apply(event, None),
        }
    }

    /// Waits until everything applied so far is on disk. Immediate for an in-memory
    /// store. An error says which commit failed since the last flush.
    pub fn flush(&self) -> Result<(), StateError> {
        match &self.writer {
            Some(writer) => writer.flush(),
            None => Ok(()),
        }
    }

    /// Answers a query. `resource` is one of portfolio, positions, trades, performance,
    /// equity, daily; `query` is a URL query string
    /// (`limit=10&symbol=BTC/USDT&strategy=RSI_MACD&since=2025-11-03T00:00:00Z` or
    /// `since=today`; `range=1D|1W|1M|all` for equity; `date=2025-11-03|today` for daily).
    /// An unknown resource or a bad parameter is an error that says what is allowed. The
    /// JSON shapes are documented on the [`state`](super) module.
    pub fn query(&self, resource: &str, query: &str) -> Result<Value, QueryError> {
        self.query_at(resource, query, OffsetDateTime::now_utc())
    }

    /// [`query`](StateStore::query) as if the time were `now`.
    pub fn query_at(
        &self,
        resource: &str,
        query: &str,
        now: OffsetDateTime,
    ) -> Result<Value, QueryError> {
        let book = self.lock();
        query::run(&book, resource, query, book::nanos(now))
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        // A panic while the lock was held leaves at worst one event half-applied; answering
        // from that beats failing every later call.
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for StateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateStore")
            .field("path", &self.writer.as_ref().map(Writer::path))
            .finish_non_exhaustive()
    }
}
