//! The commonest condition, `event.<field> <op> <number>` (`event.pnl_pct < -5`,
//! `event.drawdown_pct >= 10`), decided without the template engine: a route's `when:`
//! and an alert rule's condition run for every event, and a native comparison costs a
//! fraction of an expression's evaluation. Anything else, or a field that is not a number
//! in the event at hand, goes to minijinja as before, so the answer (and the error, for
//! a missing field) is always the one minijinja gives.

use crate::event::Event;

/// `event.<field> <op> <number>`, recognised in a condition's source.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    field: String,
    op: Op,
    value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Comparison {
    /// The comparison `source` is, if it is one this fast path decides.
    pub fn parse(source: &str) -> Option<Comparison> {
        let rest = source.trim().strip_prefix("event.")?;
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let (field, rest) = rest.split_at(end);
        if field.is_empty() || field.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        let rest = rest.trim_start();
        let (op, rest) = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .into_iter()
        .find_map(|(text, op)| rest.strip_prefix(text).map(|r| (op, r)))?;
        let literal = rest.trim();
        // Plain decimal literals only: what minijinja reads as the same number.
        if literal.is_empty()
            || !literal
                .chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_digit() || c == '.' || (i == 0 && c == '-'))
        {
            return None;
        }
        let value: f64 = literal.parse().ok()?;
        Some(Comparison {
            field: field.to_owned(),
            op,
            value,
        })
    }

    /// The answer for `event`, or `None` when the field is not a number there (the
    /// template engine decides then).
    pub fn decide(&self, event: &Event) -> Option<bool> {
        let x = event.data.get(&self.field)?.as_f64()?;
        Some(match self.op {
            Op::Lt => x < self.value,
            Op::Le => x <= self.value,
            Op::Gt => x > self.value,
            Op::Ge => x >= self.value,
            Op::Eq => x == self.value,
            Op::Ne => x != self.value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(v: serde_json::Value) -> Event {
        Event::from_json(v, time::OffsetDateTime::UNIX_EPOCH).expect("an event")
    }

    #[test]
    fn simple_comparisons_are_decided_natively_and_the_rest_is_left_alone() {
        let e = event(json!({"type": "x", "pnl_pct": -6.5, "n": 3, "name": "a"}));
        let decide = |src: &str| Comparison::parse(src).and_then(|c| c.decide(&e));
        assert_eq!(decide("event.pnl_pct < -5"), Some(true));
        assert_eq!(decide(" event.pnl_pct>=-5 "), Some(false));
        assert_eq!(decide("event.n == 3"), Some(true));
        assert_eq!(decide("event.n != 3.0"), Some(false));
        // Not a number here, or not in the data: the engine decides.
        assert_eq!(decide("event.name > 1"), None);
        assert_eq!(decide("event.missing > 1"), None);
        for other in [
            "event.n > 1 and event.n < 5",
            "event.n > other",
            "event.n > 1e3",
            "event.n|abs > 1",
            "event.a.b > 1",
            "1 < event.n",
            "event.n > '1'",
        ] {
            assert_eq!(Comparison::parse(other), None, "{other}");
        }
    }
}
