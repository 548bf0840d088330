//! What every command's answer is made of: the command as typed, the context its
//! template sees, and the rendered answer (or the usage line) from the sink's templates.
//! `answers` dispatches the commands; `silences` answers the silence ones.

use serde_json::{Value, json};

use crate::{Shared, Stats};

/// A command as typed: `/trades@alert_bot 5` → `trades`, `["5"]`, `"5"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invocation {
    pub name: String,
    /// The words after the command.
    pub args: Vec<String>,
    /// The line after the command, as typed: for arguments whose quotes hold spaces
    /// (`/silence labels.x="a b" 2h`).
    pub text: String,
}

/// Adds `extra`'s keys to the context object.
pub(crate) fn with(mut context: Value, extra: Value) -> Value {
    if let (Some(context), Value::Object(extra)) = (context.as_object_mut(), extra) {
        context.extend(extra);
    }
    context
}

pub(crate) fn usage(shared: &Shared, context: Value, usage: &str, problem: &str) -> Value {
    render(
        shared,
        "usage",
        with(context, json!({"usage": usage, "problem": problem})),
    )
}

/// Renders `templates/<sink>/commands/<name>.yaml` (or the plugin's default). When the
/// template is missing or broken, the user gets a short notice and the log says why.
pub(crate) fn render(shared: &Shared, name: &str, context: Value) -> Value {
    let template = format!("commands/{name}");
    match shared.host.render(&template, &context) {
        Ok(payload) => payload,
        Err(e) => {
            Stats::bump(&shared.stats.errors);
            shared.error(&format!(
                "cannot render the answer template {template}: {e}"
            ));
            json!({"text": "⚠️ This answer could not be worded: its template failed. The router log says why."})
        }
    }
}
