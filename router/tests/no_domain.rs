//! The router core with no domain registered, as a build without the trading crate runs:
//! every event type is custom, and there is no state to query.

use alert_router::domains::{StateQueryError, Stores, registered};
use alert_router::event::Event;
use serde_json::json;
use time::OffsetDateTime;

#[test]
fn without_a_domain_trading_types_are_custom_events() {
    assert!(registered().is_empty());
    // With trading registered this is refused (`symbol` is required); without, a
    // `trade_opened` is any other custom type and keeps its fields as they came.
    let event = Event::from_json(
        json!({"type": "trade_opened", "price": "not a number"}),
        OffsetDateTime::now_utc(),
    )
    .expect("no domain documents trade_opened");
    assert_eq!(event.kind, "trade_opened");
    assert_eq!(event.data["price"], "not a number");
}

#[test]
fn without_a_domain_no_state_is_kept_and_a_query_says_so() {
    let dir = std::env::temp_dir().join(format!("alert-router-no-domain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stores = Stores::open(&dir).unwrap();
    assert!(stores.resources().is_empty());
    assert!(!stores.tracks("trade_closed"));
    match stores.query("portfolio", "") {
        Err(StateQueryError::Unknown(m)) => assert!(m.contains("keeps no state"), "{m}"),
        other => panic!("expected an unknown resource, got {other:?}"),
    }
    // Nothing was written for a domain that is not there.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
