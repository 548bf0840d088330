//! [`RenderError`]: a template that failed for one event, with the place in the template
//! file (`file:line:col: reason`).

use crate::diag::Diagnostic;

/// Rendering one template for one event failed. Displays as
/// `templates/telegram/trade_opened.yaml:9:20: undefined value: event.stop_loss`.
///
/// The same event fails the same way every time: retrying does not help, fixing the
/// template (or the event) does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(Diagnostic);

impl RenderError {
    pub(super) fn new(diagnostic: Diagnostic) -> Self {
        RenderError(diagnostic)
    }

    /// The file, place and reason.
    pub fn diagnostic(&self) -> &Diagnostic {
        &self.0
    }
}

impl From<RenderError> for Diagnostic {
    fn from(e: RenderError) -> Self {
        e.0
    }
}
