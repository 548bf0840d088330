//! The store as its users see it: events in through `apply`, JSON out of `query`, and the
//! same answers after a restart.

use crate::testing::TempDir;
use alert_router_domain::OwnedEvent;

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{QueryError, StateStore};

fn ev(kind: &str, time: &str, data: Value) -> OwnedEvent {
    let mut value = data;
    value["type"] = json!(kind);
    value["time"] = json!(time);
    match OwnedEvent::from_json(value, crate::EVENT_TYPES) {
        Ok(e) => e,
        Err(e) => panic!("test event {kind} is invalid: {e}"),
    }
}

fn at(s: &str) -> OffsetDateTime {
    match OffsetDateTime::parse(s, &Rfc3339) {
        Ok(t) => t,
        Err(e) => panic!("{s}: {e}"),
    }
}

fn q(store: &StateStore, resource: &str, query: &str, now: &str) -> Value {
    match store.query_at(resource, query, at(now)) {
        Ok(v) => v,
        Err(e) => panic!("{resource}?{query}: {e}"),
    }
}

fn err(store: &StateStore, resource: &str, query: &str) -> String {
    match store.query(resource, query) {
        Ok(v) => panic!("{resource}?{query} was accepted: {v}"),
        Err(e) => e.to_string(),
    }
}

fn f(v: &Value) -> f64 {
    match v.as_f64() {
        Some(x) => x,
        None => panic!("not a number: {v}"),
    }
}

fn close_to(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6 * (1.0 + a.abs().max(b.abs()))
}

/// Walks a JSON value and fails on anything a client could not parse as a plain number:
/// a non-finite or absurdly large number (what an infinity would have been clamped to).
fn assert_clean(v: &Value) {
    fn walk(v: &Value, text: &str) {
        match v {
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                assert!(x.is_finite() && x.abs() < 1e300, "{n} in {text}");
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, text)),
            Value::Object(map) => map.values().for_each(|i| walk(i, text)),
            _ => {}
        }
    }
    let text = v.to_string();
    walk(v, &text);
    match serde_json::from_str::<Value>(&text) {
        Ok(back) => assert_eq!(&back, v),
        Err(e) => panic!("output does not parse back: {e}: {text}"),
    }
}

const ALL: [&str; 6] = [
    "portfolio",
    "positions",
    "trades",
    "performance",
    "equity",
    "daily",
];

fn opened(name: &str, dir: &TempDir) -> StateStore {
    match StateStore::open(&dir.0) {
        Ok(s) => s,
        Err(e) => panic!("{name}: open {}: {e}", dir.0.display()),
    }
}

fn open_trade(time: &str, symbol: &str, price: f64, qty: f64, strategy: &str) -> OwnedEvent {
    ev(
        "trade_opened",
        time,
        json!({"symbol": symbol, "side": "BUY", "entry_price": price, "quantity": qty, "strategy": strategy}),
    )
}

fn closed_trade(time: &str, symbol: &str, pnl: f64, strategy: &str) -> OwnedEvent {
    ev(
        "trade_closed",
        time,
        json!({"symbol": symbol, "side": "SELL", "entry_price": 100, "exit_price": 100.0 + pnl,
               "quantity": 1, "pnl": pnl, "pnl_pct": pnl, "strategy": strategy, "reason": "Take Profit"}),
    )
}

fn portfolio(time: &str, total: f64) -> OwnedEvent {
    ev("portfolio_update", time, json!({"total_value": total}))
}

#[test]
fn an_empty_store_answers_every_resource_without_nan() {
    let store = StateStore::in_memory();
    for r in ALL {
        assert_clean(&q(&store, r, "", "2025-11-03T12:00:00Z"));
    }
    assert_eq!(
        q(&store, "portfolio", "", "2025-11-03T12:00:00Z"),
        json!({"empty": true})
    );
    let perf = q(&store, "performance", "", "2025-11-03T12:00:00Z");
    let computed = &perf["computed"];
    assert_eq!(computed["total_trades"], json!(0));
    assert_eq!(computed["win_rate"], Value::Null);
    assert_eq!(computed["profit_factor"], Value::Null);
    assert_eq!(computed["sharpe_ratio"], Value::Null);
    assert_eq!(computed["equity_source"], json!("none"));
    assert_eq!(
        perf["reported"],
        json!({"performance_metrics": null, "daily_summary": null})
    );
    let equity = q(&store, "equity", "", "2025-11-03T12:00:00Z");
    assert_eq!(
        equity,
        json!({"points": [], "range": "all", "source": "none"})
    );
    assert!(store.flush().is_ok());
}

#[test]
fn custom_events_leave_the_state_untouched() {
    let store = StateStore::in_memory();
    let before: Vec<Value> = ALL
        .iter()
        .map(|r| q(&store, r, "", "2025-11-03T12:00:00Z"))
        .collect();
    store.apply(&ev("disk_full", "2025-11-03T10:00:00Z", json!({"pct": 99})));
    store.apply(&ev(
        "error",
        "2025-11-03T10:00:00Z",
        json!({"message": "boom"}),
    ));
    let after: Vec<Value> = ALL
        .iter()
        .map(|r| q(&store, r, "", "2025-11-03T12:00:00Z"))
        .collect();
    assert_eq!(before, after);
}

#[test]
fn trades_and_a_portfolio_update_describing_the_same_book_give_the_same_positions() {
    let from_trades = StateStore::in_memory();
    from_trades.apply(&open_trade(
        "2025-11-03T09:00:00Z",
        "BTC/USDT",
        44_000.0,
        1.0,
        "RSI_MACD",
    ));
    from_trades.apply(&open_trade(
        "2025-11-03T09:30:00Z",
        "BTC/USDT",
        46_000.0,
        1.0,
        "RSI_MACD",
    ));
    from_trades.apply(&open_trade(
        "2025-11-03T10:00:00Z",
        "ETH/USDT",
        2_500.0,
        1.0,
        "RSI_MACD",
    ));
    // Half the BTC is sold at 46,500.
    from_trades.apply(&ev(
        "trade_closed",
        "2025-11-03T11:00:00Z",
        json!({"symbol": "BTC/USDT", "side": "SELL", "entry_price": 45_000, "exit_price": 46_500,
               "quantity": 1, "pnl": 1_500, "pnl_pct": 3.33}),
    ));

    let update = ev(
        "portfolio_update",
        "2025-11-03T11:05:00Z",
        json!({"total_value": 100_000, "positions": [
            {"symbol": "BTC/USDT", "side": "LONG", "quantity": 1, "entry_price": 45_000, "current_price": 46_500},
            {"symbol": "ETH/USDT", "side": "long", "quantity": 1, "entry_price": 2_500, "current_price": 2_500},
        ]}),
    );
    let from_update = StateStore::in_memory();
    from_update.apply(&update);

    let now = "2025-11-03T12:00:00Z";
    let a = q(&from_trades, "positions", "", now);
    let b = q(&from_update, "positions", "", now);
    assert_eq!(a["source"], json!("trades"));
    assert_eq!(b["source"], json!("portfolio_update"));
    let fields = [
        "symbol",
        "side",
        "quantity",
        "entry_price",
        "current_price",
        "value",
        "pnl",
        "pnl_pct",
    ];
    let pick = |v: &Value| -> Vec<Vec<Value>> {
        let list = v["positions"].as_array().cloned().unwrap_or_default();
        list.iter()
            .map(|p| fields.iter().map(|k| p[*k].clone()).collect())
            .collect()
    };
    assert_eq!(pick(&a).len(), 2);
    assert_eq!(pick(&a), pick(&b));
    let btc = &a["positions"][0];
    assert_eq!(btc["symbol"], json!("BTC/USDT"));
    assert_eq!(btc["side"], json!("LONG"));
    assert_eq!(f(&btc["quantity"]), 1.0);
    assert_eq!(f(&btc["entry_price"]), 45_000.0);
    assert_eq!(f(&btc["pnl"]), 1_500.0);
    assert!(close_to(f(&btc["pnl_pct"]), 100.0 / 30.0));
    assert_eq!(btc["opened_at"], json!("2025-11-03T09:00:00Z"));
    assert_eq!(btc["strategy"], json!("RSI_MACD"));

    // The update replaces the set; what trades knew about when they opened is kept.
    from_trades.apply(&update);
    let c = q(&from_trades, "positions", "", now);
    assert_eq!(c["source"], json!("portfolio_update"));
    assert_eq!(pick(&c), pick(&b));
    assert_eq!(
        c["positions"][0]["opened_at"],
        json!("2025-11-03T09:00:00Z")
    );

    let only_eth = q(&from_trades, "positions", "symbol=eth%2Fusdt", now);
    assert_eq!(only_eth["positions"].as_array().map(Vec::len), Some(1));

    let p = q(&from_update, "portfolio", "", now);
    assert_eq!(f(&p["positions_value"]), 46_500.0 + 2_500.0);
    assert_eq!(p["updated_at"], json!("2025-11-03T11:05:00Z"));
}

#[test]
fn reported_position_marks_are_shown_until_the_price_moves() {
    let store = StateStore::in_memory();
    store.apply(&ev(
        "portfolio_update",
        "2025-11-03T11:00:00Z",
        json!({"total_value": 10_000, "positions": [
            {"symbol": "SOL/USDT", "side": "SHORT", "quantity": 10, "entry_price": 200, "current_price": 190,
             "pnl": 95, "pnl_pct": 4.75, "value": 1_900}]}),
    ));
    let now = "2025-11-03T12:00:00Z";
    let p = &q(&store, "positions", "", now)["positions"][0];
    assert_eq!(f(&p["pnl"]), 95.0, "the producer's own figure (after fees)");
    store.apply(&open_trade(
        "2025-11-03T11:30:00Z",
        "SOL/USDT",
        180.0,
        0.0,
        "x",
    ));
    let p = &q(&store, "positions", "", now)["positions"][0];
    assert_eq!(f(&p["current_price"]), 180.0);
    assert_eq!(f(&p["pnl"]), 200.0, "a short gains when the price falls");
    assert_eq!(f(&p["pnl_pct"]), 10.0);
}

#[test]
fn performance_answers_computed_and_reported_figures_apart() {
    let store = StateStore::in_memory();
    // Trades: 3 wins of 5, 350 won and 75 lost.
    for (i, pnl) in [100.0, -50.0, 200.0, -25.0, 50.0].iter().enumerate() {
        store.apply(&closed_trade(
            &format!("2025-11-0{}T12:00:00Z", i + 1),
            "BTC/USDT",
            *pnl,
            "RSI_MACD",
        ));
    }
    // Daily closes 100, 102, 101, 105, 104, 108 with an intraday high and dip.
    let closes = [100.0, 102.0, 101.0, 105.0, 104.0, 108.0];
    for (i, c) in closes.iter().enumerate() {
        store.apply(&portfolio(&format!("2025-11-0{}T23:00:00Z", i + 1), *c));
    }
    store.apply(&portfolio("2025-11-04T10:00:00Z", 120.0));
    store.apply(&portfolio("2025-11-04T11:00:00Z", 90.0));
    store.apply(&ev(
        "performance_metrics",
        "2025-11-06T23:30:00Z",
        json!({"sharpe_ratio": 1.85, "total_return": 25.0, "calmar_ratio": 3.1, "win_rate": 80.0}),
    ));

    let perf = q(&store, "performance", "", "2025-11-05T18:00:00Z");
    assert_clean(&perf);
    let keys: Vec<&String> = perf
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        ["computed", "reported"],
        "two objects, nothing merged"
    );

    // Computed: from the five trades and the portfolio values the router saw, even
    // where the producer reported the same metric.
    let computed = &perf["computed"];
    assert_eq!(computed["total_trades"], json!(5));
    assert_eq!(
        (computed["wins"].clone(), computed["losses"].clone()),
        (json!(3), json!(2))
    );
    assert_eq!(f(&computed["win_rate"]), 60.0);
    assert!(close_to(f(&computed["profit_factor"]), 350.0 / 75.0));
    assert_eq!(f(&computed["total_pnl"]), 275.0);
    assert_eq!(f(&computed["avg_loss"]), -37.5);
    assert_eq!(f(&computed["best_trade"]), 200.0);
    assert_eq!(f(&computed["worst_trade"]), -50.0);
    assert_eq!(f(&computed["expectancy"]), 55.0);
    let r: Vec<f64> = closes.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
    let n = r.len() as f64;
    let mean = r.iter().sum::<f64>() / n;
    let sd = (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    assert!(close_to(
        f(&computed["sharpe_ratio"]),
        mean / sd * 365f64.sqrt()
    ));
    assert!(close_to(f(&computed["total_return"]), 8.0));
    assert_eq!(computed["daily_returns"], json!(5));
    // The intraday fall from 120 to 90 is the deepest: 25%.
    assert!(close_to(f(&computed["max_drawdown"]), 25.0));
    assert!(close_to(f(&computed["max_drawdown_abs"]), 30.0));
    assert_eq!(computed["equity_source"], json!("portfolio_update"));
    assert_eq!(computed.get("calmar_ratio"), None);
    // Today (Nov 5): the fifth trade, +50.
    assert_eq!(
        computed["today"],
        json!({"date": "2025-11-05", "trades": 1, "pnl": 50.0})
    );

    // Reported: the producer's event as sent, with its time.
    assert_eq!(
        perf["reported"],
        json!({
            "performance_metrics": {"sharpe_ratio": 1.85, "total_return": 25.0, "calmar_ratio": 3.1,
                                    "win_rate": 80.0, "time": "2025-11-06T23:30:00Z"},
            "daily_summary": null,
        })
    );
}

/// The first hour of a new user: a bot that reports its own figures (counting a trade
/// the router never saw) beside the trades the router saw. Each figure must add up with
/// the others of its own source.
#[test]
fn figures_that_disagree_stay_with_their_source() {
    let store = StateStore::in_memory();
    for (time, pnl) in [
        ("2025-11-03T10:00:00Z", 200.0),
        ("2025-11-03T11:00:00Z", 100.0),
    ] {
        store.apply(&closed_trade(time, "ETH/USDT", pnl, "RSI_MACD"));
    }
    store.apply(&ev(
        "performance_metrics",
        "2025-11-03T12:00:00Z",
        json!({"win_rate": 66.7, "total_trades": 3, "worst_trade": -100, "var_95": -1.5}),
    ));
    store.apply(&ev(
        "daily_summary",
        "2025-11-03T23:59:00Z",
        json!({"date": "2025-11-03", "total_trades": 3, "winning_trades": 2, "losing_trades": 1,
               "win_rate": 66.7, "total_pnl": 200, "worst_trade": -100}),
    ));
    let perf = q(&store, "performance", "", "2025-11-03T23:59:30Z");
    let computed = &perf["computed"];
    assert_eq!(
        [
            &computed["total_trades"],
            &computed["wins"],
            &computed["losses"]
        ],
        [&json!(2), &json!(2), &json!(0)]
    );
    assert_eq!(f(&computed["win_rate"]), 100.0);
    assert_eq!(f(&computed["worst_trade"]), 100.0);
    assert_eq!(computed["var_95"], Value::Null, "no portfolio values seen");
    let metrics = &perf["reported"]["performance_metrics"];
    assert_eq!(metrics["total_trades"], json!(3));
    assert_eq!(f(&metrics["win_rate"]), 66.7);
    assert_eq!(metrics["worst_trade"], json!(-100));
    assert_eq!(f(&metrics["var_95"]), -1.5, "the producer's sign, as sent");
    assert_eq!(metrics["time"], json!("2025-11-03T12:00:00Z"));
    let summary = &perf["reported"]["daily_summary"];
    assert_eq!(summary["losing_trades"], json!(1));
    assert_eq!(summary["time"], json!("2025-11-03T23:59:00Z"));
}

#[test]
fn edge_curves_give_nulls_not_nan() {
    let single = StateStore::in_memory();
    single.apply(&portfolio("2025-11-03T10:00:00Z", 1_000.0));
    let flat = StateStore::in_memory();
    for day in 1..=9 {
        flat.apply(&portfolio(&format!("2025-11-0{day}T10:00:00Z"), 1_000.0));
    }
    let losses = StateStore::in_memory();
    losses.apply(&closed_trade(
        "2025-11-03T10:00:00Z",
        "BTC/USDT",
        -10.0,
        "x",
    ));
    losses.apply(&closed_trade(
        "2025-11-03T11:00:00Z",
        "BTC/USDT",
        -30.0,
        "x",
    ));
    let now = "2025-11-10T00:00:00Z";
    for store in [&single, &flat, &losses] {
        for r in ALL {
            assert_clean(&q(store, r, "", now));
        }
    }
    let p = &q(&single, "performance", "", now)["computed"];
    assert_eq!(
        (p["sharpe_ratio"].clone(), p["volatility"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(f(&p["max_drawdown"]), 0.0);
    let p = &q(&flat, "performance", "", now)["computed"];
    assert_eq!(p["sharpe_ratio"], Value::Null, "zero deviation");
    assert_eq!(p["sortino_ratio"], Value::Null);
    assert_eq!(f(&p["volatility"]), 0.0);
    assert_eq!(f(&p["var_95"]), 0.0);
    let p = &q(&losses, "performance", "", now)["computed"];
    assert_eq!(f(&p["win_rate"]), 0.0);
    assert_eq!(
        f(&p["profit_factor"]),
        0.0,
        "nothing won: zero, not infinity"
    );
    assert_eq!(p["avg_win"], Value::Null);
    assert_eq!(p["equity_source"], json!("trades"));
    assert_eq!(
        p["sharpe_ratio"],
        Value::Null,
        "no returns without portfolio values"
    );
    assert_eq!(
        p["max_drawdown"],
        Value::Null,
        "no percentage of a P&L that never rose"
    );
    assert_eq!(f(&p["max_drawdown_abs"]), 30.0);
}

#[test]
fn a_curve_from_trades_alone_says_so() {
    let store = StateStore::in_memory();
    store.apply(&closed_trade("2025-11-03T10:00:00Z", "BTC/USDT", 50.0, "x"));
    store.apply(&closed_trade(
        "2025-11-03T11:00:00Z",
        "BTC/USDT",
        -20.0,
        "x",
    ));
    let eq = q(&store, "equity", "", "2025-11-03T12:00:00Z");
    assert_eq!(eq["source"], json!("trades"));
    assert!(
        eq["note"]
            .as_str()
            .is_some_and(|n| n.contains("cumulative closed P&L"))
    );
    assert_eq!(
        eq["points"],
        json!([{"time": "2025-11-03T10:00:00Z", "value": 50.0}, {"time": "2025-11-03T11:00:00Z", "value": 30.0}])
    );
}

#[test]
fn equity_ranges_cut_by_time() {
    let store = StateStore::in_memory();
    for day in 1..=40 {
        let date = time::Date::from_ordinal_date(2025, 280 + day).map(|d| d.to_string());
        let Ok(date) = date else { panic!("date") };
        store.apply(&portfolio(
            &format!("{date}T12:00:00Z"),
            1_000.0 + day as f64,
        ));
    }
    let now = "2025-11-16T13:00:00Z"; // day 320 = Nov 16: the 40th point is 1 hour old
    let count = |range: &str| {
        q(&store, "equity", &format!("range={range}"), now)["points"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(count("1D"), 1);
    assert_eq!(count("1w"), 7);
    assert_eq!(count("1M"), 30);
    assert_eq!(count("all"), 40);
    let last = q(&store, "equity", "range=1D", now);
    assert_eq!(last["range"], json!("1D"));
    assert_eq!(
        last["points"][0],
        json!({"time": "2025-11-16T12:00:00Z", "value": 1040.0})
    );
    let e = err(&store, "equity", "range=1Y");
    assert!(e.contains("1D, 1W, 1M or all"), "{e}");
}

#[test]
fn trade_queries_filter_and_limit() {
    let store = StateStore::in_memory();
    store.apply(&closed_trade(
        "2025-11-02T10:00:00Z",
        "BTC/USDT",
        10.0,
        "RSI_MACD",
    ));
    store.apply(&closed_trade(
        "2025-11-03T09:00:00Z",
        "ETH/USDT",
        -5.0,
        "RSI_MACD",
    ));
    store.apply(&closed_trade(
        "2025-11-03T10:00:00Z",
        "BTC/USDT",
        20.0,
        "Breakout",
    ));
    store.apply(&closed_trade(
        "2025-11-03T11:00:00Z",
        "BTC/USDT",
        30.0,
        "RSI_MACD",
    ));
    let now = "2025-11-03T12:00:00Z";
    let pnls = |v: &Value| -> Vec<f64> {
        v["trades"]
            .as_array()
            .map(|l| l.iter().map(|t| f(&t["pnl"])).collect())
            .unwrap_or_default()
    };

    let all = q(&store, "trades", "", now);
    assert_eq!(pnls(&all), vec![30.0, 20.0, -5.0, 10.0], "newest first");
    assert_eq!(all["total"], json!(4));
    let t = &all["trades"][0];
    assert_eq!(t["closed_at"], json!("2025-11-03T11:00:00Z"));
    assert_eq!(t["reason"], json!("Take Profit"));
    assert_eq!(t["side"], json!("SELL"));

    let limited = q(&store, "trades", "limit=2", now);
    assert_eq!(pnls(&limited), vec![30.0, 20.0]);
    assert_eq!(limited["total"], json!(4), "total counts before the limit");
    assert_eq!(
        pnls(&q(&store, "trades", "symbol=BTC/USDT", now)),
        vec![30.0, 20.0, 10.0]
    );
    assert_eq!(
        pnls(&q(
            &store,
            "trades",
            "symbol=BTC%2FUSDT&strategy=rsi_macd",
            now
        )),
        vec![30.0, 10.0]
    );
    assert_eq!(
        pnls(&q(&store, "trades", "since=today", now)),
        vec![30.0, 20.0, -5.0]
    );
    assert_eq!(
        pnls(&q(&store, "trades", "since=2025-11-03T09:30:00Z", now)),
        vec![30.0, 20.0]
    );
    assert_eq!(
        pnls(&q(&store, "trades", "?since=2025-11-02&limit=1", now)),
        vec![30.0]
    );
    assert_eq!(
        pnls(&q(&store, "trades", "strategy=None", now)),
        Vec::<f64>::new()
    );

    let daily = q(&store, "daily", "", now);
    assert_eq!(daily["date"], json!("2025-11-03"));
    assert_eq!(
        (
            daily["count"].clone(),
            daily["wins"].clone(),
            daily["losses"].clone()
        ),
        (json!(3), json!(2), json!(1))
    );
    assert_eq!(f(&daily["pnl"]), 45.0);
    let yesterday = q(&store, "daily", "date=2025-11-02", now);
    assert_eq!(yesterday["count"], json!(1));
    assert_eq!(
        q(&store, "daily", "date=today&symbol=ETH/USDT", now)["count"],
        json!(1)
    );
}

#[test]
fn bad_queries_say_what_is_allowed() {
    let store = StateStore::in_memory();
    let e = err(&store, "wallet", "");
    assert!(e.contains("unknown state resource `wallet`"), "{e}");
    assert!(
        e.contains("portfolio, positions, trades, performance, equity, daily"),
        "{e}"
    );

    let e = err(&store, "trades", "limit=10&sort=pnl");
    assert_eq!(
        e,
        "`sort` is not a parameter of `trades`: use limit, symbol, strategy, since"
    );
    let e = err(&store, "portfolio", "symbol=BTC");
    assert!(e.contains("it takes no parameters"), "{e}");
    for bad in ["limit=0", "limit=10001", "limit=ten", "limit=", "limit=-1"] {
        let e = err(&store, "trades", bad);
        assert!(e.contains("a whole number from 1 to 10000"), "{bad}: {e}");
    }
    let e = err(&store, "trades", "since=yesterday");
    assert!(e.contains("since=\"yesterday\" is not valid"), "{e}");
    assert!(e.contains("`today`"), "{e}");
    let e = err(&store, "trades", "limit=1&limit=2");
    assert!(e.contains("`limit` is given more than once"), "{e}");
    let e = err(&store, "trades", "symbol=%E2%28");
    assert!(e.contains("URL encoding"), "{e}");
    let e = err(&store, "daily", "date=11/03/2025");
    assert!(e.contains("a date such as 2025-11-03"), "{e}");
    match store.query("trades", &format!("since={}", "x".repeat(500))) {
        Err(QueryError::BadValue { value, .. }) => assert!(value.chars().count() <= 61),
        other => panic!("{other:?}"),
    }
}

#[test]
fn daily_shows_the_days_reported_summary() {
    let store = StateStore::in_memory();
    store.apply(&ev(
        "daily_summary",
        "2025-11-03T23:59:00Z",
        json!({"date": "2025-11-03", "total_trades": 15, "winning_trades": 10, "losing_trades": 5,
               "win_rate": 66.67, "total_pnl": 1250.5}),
    ));
    let today = q(&store, "daily", "", "2025-11-03T23:59:30Z");
    assert_eq!(today["reported"]["total_trades"], json!(15));
    assert_eq!(today["reported"]["time"], json!("2025-11-03T23:59:00Z"));
    // The day's own figures are the router's, from the trades it saw (none): the
    // reported 15 trades stay under `reported`.
    assert_eq!(today["count"], json!(0));
    let next = q(&store, "daily", "", "2025-11-04T08:00:00Z");
    assert_eq!(next["reported"], Value::Null);
}

/// Applies a history big enough to thin both curves and prune the trade history.
fn busy_history(store: &StateStore) {
    let start = at("2025-06-01T00:00:00Z");
    for i in 0..2_600i64 {
        let t = start + time::Duration::hours(i);
        let value = 10_000.0 + 500.0 * ((i as f64) / 90.0).sin() + i as f64;
        store.apply(&portfolio(&alert_router_domain::format_time(t), value));
    }
    for i in 0..10_050i64 {
        let t = start + time::Duration::minutes(15 * i);
        let pnl = if i % 3 == 0 {
            -40.0
        } else {
            25.0 + (i % 7) as f64
        };
        let strategy = if i % 2 == 0 { "RSI_MACD" } else { "Breakout" };
        store.apply(&closed_trade(
            &alert_router_domain::format_time(t),
            "BTC/USDT",
            pnl,
            strategy,
        ));
    }
    store.apply(&open_trade(
        "2025-09-01T00:00:00Z",
        "ETH/USDT",
        2_400.0,
        3.0,
        "RSI_MACD",
    ));
    store.apply(&open_trade(
        "2025-09-01T01:00:00Z",
        "SOL/USDT",
        150.0,
        10.0,
        "Breakout",
    ));
    store.apply(&ev(
        "trade_closed",
        "2025-09-01T02:00:00Z",
        json!({"symbol": "SOL/USDT", "side": "SELL", "entry_price": 150, "exit_price": 160,
               "quantity": 10, "pnl": 100, "pnl_pct": 6.67, "duration": 3600}),
    ));
    store.apply(&ev(
        "performance_metrics",
        "2025-09-01T03:00:00Z",
        json!({"sharpe_ratio": 2.1, "var_95": 1.2}),
    ));
    store.apply(&ev(
        "daily_summary",
        "2025-09-01T03:00:00Z",
        json!({"total_trades": 4, "winning_trades": 3, "losing_trades": 1, "win_rate": 75, "total_pnl": 12}),
    ));
    store.apply(&ev("disk_full", "2025-09-01T03:00:00Z", json!({"pct": 97})));
}

fn answers(store: &StateStore) -> Vec<Value> {
    let now = "2025-09-01T12:00:00Z";
    let mut out: Vec<Value> = ALL.iter().map(|r| q(store, r, "", now)).collect();
    out.push(q(store, "trades", "limit=10000", now));
    out.push(q(store, "equity", "range=1W", now));
    out.push(q(store, "daily", "date=2025-09-01", now));
    out
}

#[test]
fn state_survives_a_restart() {
    let dir = TempDir::new("restart");
    let before = {
        let store = opened("first run", &dir);
        busy_history(&store);
        if let Err(e) = store.flush() {
            panic!("flush: {e}");
        }
        answers(&store)
    };
    assert!(dir.0.join("state.db").exists());
    // The history really was big: trades were pruned and the curve thinned.
    assert_eq!(before[6]["total"], json!(10_000));
    assert_eq!(before[3]["computed"]["total_trades"], json!(10_051));
    let points = before[4]["points"].as_array().map_or(0, Vec::len);
    assert!((1_000..=2_000).contains(&points), "{points} points");
    assert_eq!(before[1]["positions"].as_array().map(Vec::len), Some(1));
    assert!(before[3]["computed"]["sharpe_ratio"].is_number());

    let store = opened("second run", &dir);
    let after = answers(&store);
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert_eq!(b, a, "answer {i} changed across the restart");
    }

    // Later changes append to what was loaded, and dropping the store saves them.
    store.apply(&closed_trade(
        "2025-09-01T04:00:00Z",
        "ETH/USDT",
        7.0,
        "RSI_MACD",
    ));
    drop(store);
    let third = opened("third run", &dir);
    let trades = q(&third, "trades", "limit=1", "2025-09-01T12:00:00Z");
    assert_eq!(f(&trades["trades"][0]["pnl"]), 7.0);
    assert_eq!(trades["total"], json!(10_000));
    assert_eq!(
        q(&third, "performance", "", "2025-09-01T12:00:00Z")["computed"]["total_trades"],
        json!(10_052)
    );
}

#[test]
fn the_store_is_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<StateStore>();
    let dir = TempDir::new("threads");
    let store = std::sync::Arc::new(opened("threads", &dir));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..250 {
                    store.apply(&closed_trade(
                        "2025-11-03T10:00:00Z",
                        &format!("S{w}"),
                        f64::from(i),
                        "x",
                    ));
                }
            })
        })
        .collect();
    for w in workers {
        assert!(w.join().is_ok());
    }
    assert!(store.flush().is_ok());
    let total = q(&store, "trades", "limit=1", "2025-11-03T12:00:00Z")["total"].clone();
    assert_eq!(total, json!(1_000));
    drop(store);
    let again = opened("threads again", &dir);
    assert_eq!(
        q(&again, "trades", "limit=1", "2025-11-03T12:00:00Z")["total"],
        json!(1_000)
    );
}
