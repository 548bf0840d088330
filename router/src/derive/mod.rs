//! Events the router derives itself: alert rules over the event stream (`alerts:` in
//! rule files) and, on a calendar, schedules.

pub mod cron;
pub mod eval;
pub mod rules;
pub mod schedules;
