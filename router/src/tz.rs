//! Time zones by IANA name (the system's database, else the one built in), and the
//! conversions between the router's instants (`time`) and jiff's, which knows zones.
//! Shared by time windows (`notify/time_intervals.rs`) and schedules (`derive/cron.rs`).

use jiff::Timestamp;
use jiff::tz::TimeZone;
use time::OffsetDateTime;

use crate::diag::closest;

/// The zone named `name` (IANA, e.g. `Europe/Berlin`; `UTC`; `Local` for this machine's,
/// as Alertmanager accepts); `Err` says what is wrong, ending with `otherwise` when no
/// name is close (what else the caller takes).
pub fn zone(name: &str, otherwise: &str) -> Result<TimeZone, String> {
    match name {
        // Go reads an empty name as UTC.
        "" | "UTC" => return Ok(TimeZone::UTC),
        "Local" => {
            return TimeZone::try_system().map_err(|e| {
                format!("`Local`: this machine's time zone is unknown ({e}): name an IANA zone such as `Europe/Berlin`")
            });
        }
        _ => {}
    }
    TimeZone::get(name).map_err(|_| {
        let known: Vec<String> = jiff::tz::db()
            .available()
            .map(|n| n.as_str().to_owned())
            .collect();
        match closest(name, known.iter().map(String::as_str)) {
            Some(c) => format!("`{name}` is not an IANA time zone name: did you mean `{c}`?"),
            None => format!(
                "`{name}` is not an IANA time zone name: write one such as `Europe/Berlin` or `America/New_York`{otherwise}"
            ),
        }
    })
}

pub fn to_timestamp(at: OffsetDateTime) -> Option<Timestamp> {
    Timestamp::from_nanosecond(at.unix_timestamp_nanos()).ok()
}

pub fn to_offset_date_time(at: Timestamp) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(at.as_nanosecond()).ok()
}
