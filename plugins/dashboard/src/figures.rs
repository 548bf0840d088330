//! The header's figures and where each one comes from. The router answers what it
//! computed from the events it saw apart from what the producer reported (they may
//! disagree: a bot counts trades the router never saw). The header has room for one
//! value per figure, so it takes one source per figure, says which, and never mixes
//! them: the router's own figure when it has one, else the producer's latest report.

use serde_json::{Map, Value, json};

/// `GET /api/summary` from the router's `state/portfolio` and `state/performance`
/// answers: the latest portfolio (`total_value`, `cash`, `drawdown_pct`, `updated_at`),
/// the figures `pnl`, `win_rate` and `sharpe_ratio` (see [`figure`]), and the router's
/// `total_trades` and `today`.
pub fn summary(portfolio: &Value, performance: &Value) -> Value {
    let computed = &performance["computed"];
    let reported = &performance["reported"]["performance_metrics"];
    let from_trades = ("trades", &computed["total_trades"]);
    let from_returns = ("daily_returns", &computed["daily_returns"]);
    json!({
        "total_value": portfolio["total_value"],
        "cash": portfolio["cash"],
        "drawdown_pct": portfolio["drawdown_pct"],
        "updated_at": portfolio["updated_at"],
        "pnl": pnl(portfolio, computed),
        "win_rate": figure("win_rate", computed, from_trades, reported),
        "sharpe_ratio": figure("sharpe_ratio", computed, from_returns, reported),
        "total_trades": computed["total_trades"],
        "today": computed["today"],
    })
}

/// One figure: `{"value", "source": "computed", <basis>: n}` when the router computed it
/// (the basis says from how much: `trades` or `daily_returns`), else `{"value",
/// "source": "reported", "time"}` from the producer's latest `performance_metrics`, else
/// `{"value": null, "source": "none"}`.
fn figure(key: &str, computed: &Value, basis: (&str, &Value), reported: &Value) -> Value {
    if let Some(value) = number(computed, key) {
        let mut out = Map::new();
        out.insert("value".into(), value);
        out.insert("source".into(), json!("computed"));
        out.insert(basis.0.into(), basis.1.clone());
        return Value::Object(out);
    }
    match number(reported, key) {
        Some(value) => json!({"value": value, "source": "reported", "time": reported["time"]}),
        None => json!({"value": null, "source": "none"}),
    }
}

/// The P&L: the latest `portfolio_update`'s own (`source: "reported"`, with `pct` and
/// the update's `time`) when it gave one, since only the producer knows what is not
/// closed yet; else the closed trades' total the router computed (`pct` is then `null`:
/// a percentage of what, the router cannot tell).
fn pnl(portfolio: &Value, computed: &Value) -> Value {
    if let Some(value) = number(portfolio, "pnl") {
        return json!({"value": value, "pct": portfolio["pnl_pct"], "source": "reported",
                      "time": portfolio["updated_at"]});
    }
    match computed["total_trades"].as_u64() {
        Some(n) if n > 0 => {
            json!({"value": computed["total_pnl"], "pct": null, "source": "computed",
                                   "trades": n})
        }
        _ => json!({"value": null, "pct": null, "source": "none"}),
    }
}

fn number(object: &Value, key: &str) -> Option<Value> {
    object.get(key).filter(|v| v.is_number()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn performance(computed: Value, reported: Value) -> Value {
        json!({"computed": computed, "reported": {"performance_metrics": reported, "daily_summary": null}})
    }

    #[test]
    fn the_routers_own_figures_come_first_and_say_from_how_much() {
        let perf = performance(
            json!({"total_trades": 2, "win_rate": 100.0, "total_pnl": 300.0, "sharpe_ratio": 1.2,
                   "daily_returns": 34, "today": {"trades": 2}}),
            json!({"win_rate": 66.7, "total_trades": 3, "sharpe_ratio": 1.85, "time": "2025-11-03T12:00:00Z"}),
        );
        let s = summary(&json!({"empty": true}), &perf);
        assert_eq!(
            s["win_rate"],
            json!({"value": 100.0, "source": "computed", "trades": 2})
        );
        assert_eq!(
            s["sharpe_ratio"],
            json!({"value": 1.2, "source": "computed", "daily_returns": 34})
        );
        assert_eq!(
            s["pnl"],
            json!({"value": 300.0, "pct": null, "source": "computed", "trades": 2})
        );
        assert_eq!(s["total_trades"], 2, "the router's count, not the bot's 3");
        assert_eq!(s["total_value"], Value::Null);
    }

    #[test]
    fn a_figure_the_router_cannot_compute_is_the_reported_one_with_its_time() {
        let perf = performance(
            json!({"total_trades": 0, "win_rate": null, "sharpe_ratio": null, "daily_returns": 0}),
            json!({"win_rate": 66.7, "sharpe_ratio": 1.85, "time": "2025-11-03T12:00:00Z"}),
        );
        let portfolio = json!({"total_value": 12500.0, "pnl": -40.5, "pnl_pct": -0.3,
                               "updated_at": "2025-11-03T12:05:00Z"});
        let s = summary(&portfolio, &perf);
        assert_eq!(
            s["win_rate"],
            json!({"value": 66.7, "source": "reported", "time": "2025-11-03T12:00:00Z"})
        );
        assert_eq!(s["sharpe_ratio"]["source"], "reported");
        assert_eq!(
            s["pnl"],
            json!({"value": -40.5, "pct": -0.3, "source": "reported", "time": "2025-11-03T12:05:00Z"})
        );
    }

    #[test]
    fn nothing_known_is_null_with_no_source() {
        let perf = performance(
            json!({"total_trades": 0, "win_rate": null, "daily_returns": 0}),
            Value::Null,
        );
        let s = summary(&json!({"empty": true}), &perf);
        for key in ["win_rate", "sharpe_ratio"] {
            assert_eq!(s[key], json!({"value": null, "source": "none"}), "{key}");
        }
        assert_eq!(
            s["pnl"],
            json!({"value": null, "pct": null, "source": "none"})
        );
    }
}
