//! Cron expressions: when a schedule fires, read on a time zone's wall clock.
//!
//! The five standard fields (`minute hour day-of-month month day-of-week`) and Vixie
//! cron's macros (`@daily`, …), evaluated as Vixie cron and cronie do, including what they
//! do when daylight saving time skips or repeats an hour (see [`Cron`]). A schedule asks
//! [`Cron::next_after`] when to fire next and [`Cron::prev_at_or_before`] whether it
//! missed a run while the router was down.

use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use time::OffsetDateTime;

use crate::diag::closest;

/// How far [`Cron::next_after`] and [`Cron::prev_at_or_before`] look: just past the
/// longest wait a satisfiable expression can have, February 29th across a century that is
/// not a leap year (2096 to 2104).
const HORIZON: SignedDuration = SignedDuration::from_hours(24 * (366 * 8 + 2));

const MINUTE: SignedDuration = SignedDuration::from_mins(1);

/// Vixie cron's macros and what they stand for.
const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// One of the five fields: its place, its name in messages and the values it takes.
struct Spec {
    number: u8,
    name: &'static str,
    /// "a minute", to say what a bad value is not.
    noun: &'static str,
    /// How to write a value, for messages.
    how: &'static str,
    /// The numbers accepted (the day of the week takes 7 for Sunday too).
    min: i8,
    max: i8,
    /// What `*` covers: `max`, except the day of the week's 7, which is 0 again.
    star_max: i8,
    /// Three-letter names; the first stands for `min`.
    names: &'static [&'static str],
}

const MINUTES: Spec = Spec {
    number: 1,
    name: "minute",
    noun: "a minute",
    how: "a number 0-59",
    min: 0,
    max: 59,
    star_max: 59,
    names: &[],
};

const HOURS: Spec = Spec {
    number: 2,
    name: "hour",
    noun: "an hour",
    how: "a number 0-23",
    min: 0,
    max: 23,
    star_max: 23,
    names: &[],
};

const DAYS: Spec = Spec {
    number: 3,
    name: "day of month",
    noun: "a day of the month",
    how: "a number 1-31",
    min: 1,
    max: 31,
    star_max: 31,
    names: &[],
};

const MONTHS: Spec = Spec {
    number: 4,
    name: "month",
    noun: "a month",
    how: "1-12 or jan, feb, … dec",
    min: 1,
    max: 12,
    star_max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};

const WEEKDAYS: Spec = Spec {
    number: 5,
    name: "day of week",
    noun: "a day of the week",
    how: "0-7 or sun, mon, … sat",
    min: 0,
    max: 7,
    star_max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

const SPECS: [&Spec; 5] = [&MINUTES, &HOURS, &DAYS, &MONTHS, &WEEKDAYS];

/// A set of numbers below 64, one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Set(u64);

impl Set {
    fn has(self, v: i8) -> bool {
        (0..64).contains(&v) && self.0 >> v & 1 == 1
    }

    /// The smallest member ≥ `v`.
    fn first_from(self, v: i8) -> Option<i8> {
        if !(0..64).contains(&v) {
            return None;
        }
        let rest = self.0 >> v;
        (rest != 0).then(|| v + rest.trailing_zeros() as i8)
    }

    /// The largest member ≤ `v`.
    fn last_upto(self, v: i8) -> Option<i8> {
        if v < 0 {
            return None;
        }
        let upto = self.0 & (u64::MAX >> (63 - v.min(63)));
        (upto != 0).then(|| 63 - upto.leading_zeros() as i8)
    }
}

/// A parsed cron expression.
///
/// # Fields
///
/// `minute hour day-of-month month day-of-week`, separated by spaces. Each field is `*`
/// or a comma-separated list of values (`1,15`), ranges (`1-5`) and stepped ranges (`*/15`,
/// `10-50/10`). Months may be named `jan` … `dec` and weekdays `sun` … `sat`, in any
/// case; 0 and 7 are both Sunday. The macros `@yearly` (`@annually`), `@monthly`,
/// `@weekly`, `@daily` (`@midnight`) and `@hourly` stand for their usual expressions.
///
/// When both day fields are restricted, a day matches if **either** does, as in Vixie cron:
/// `0 9 13 * fri` runs on every 13th and on every Friday. A day field written starting with
/// `*` (also `*/2`) counts as unrestricted, so then both must match: `0 9 */2 * fri` runs on
/// Fridays with an odd date. (Kubernetes' cron library treats `*/2` as restricted there.)
///
/// # Daylight saving time
///
/// Times are read on the wall clock of the zone given, and when the clock jumps, as Vixie
/// cron and cronie do ("this only applies to jobs that run at a specific time", cron(8)):
///
/// - An expression whose minute and hour fields are both fixed (neither starts with `*`:
///   `30 1 * * *`, `@daily`, `0 9-17 * * *`) names wall-clock times. One that the clock
///   skips when it springs forward runs once, at the first instant after the gap (02:30 on
///   2026-03-08 in New York runs at 03:00 EDT), so a daily job still runs that day; one the
///   clock shows twice when it falls back runs once, the first time.
/// - An expression whose minute or hour field starts with `*` (`*/15 * * * *`, `@hourly`)
///   keeps its pace in real time: it runs whenever the clock shows a matching time, so in a
///   repeated hour it runs twice and in a skipped hour not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    /// As written, with single spaces; a macro in lower case.
    text: String,
    minutes: Set,
    hours: Set,
    days: Set,
    months: Set,
    /// 0 (Sunday) to 6.
    weekdays: Set,
    /// Vixie's rule: a day field written starting with `*` leaves the choice to the other.
    days_star: bool,
    weekdays_star: bool,
    /// Vixie's "wildcard job": the minute or hour field starts with `*`; see the DST rules.
    wildcard: bool,
}

impl Cron {
    /// Parses an expression; `Err` says what is wrong, where, and how to write it.
    pub fn parse(text: &str) -> Result<Cron, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let Some(first) = words.first() else {
            return Err("the expression is empty: write 5 fields such as `0 9 * * mon-fri`, or a macro such as `@daily`".to_owned());
        };
        if first.starts_with('@') {
            return macro_(&words);
        }
        if words.len() != 5 {
            return Err(field_count(&words));
        }
        let mut sets = [Set::default(); 5];
        for ((set, spec), word) in sets.iter_mut().zip(SPECS).zip(&words) {
            *set = field(spec, word)
                .map_err(|e| format!("field {} ({}): {e}", spec.number, spec.name))?;
        }
        let [minutes, hours, days, months, weekdays] = sets;
        let star = |i: usize| words[i].starts_with('*');
        Ok(Cron {
            text: words.join(" "),
            minutes,
            hours,
            days,
            months,
            weekdays,
            days_star: star(2),
            weekdays_star: star(4),
            wildcard: star(0) || star(1),
        })
    }

    /// The first instant strictly after `after` at which this runs in `zone` (see the DST
    /// rules above), in UTC; `None` if nothing runs within the next eight years.
    pub fn next_after(&self, after: OffsetDateTime, zone: &TimeZone) -> Option<OffsetDateTime> {
        to_offset_date_time(self.next_timestamp(to_timestamp(after)?, zone)?)
    }

    /// The last instant at or before `at` at which this ran in `zone`, in UTC; `None` if
    /// nothing ran within the eight years before.
    pub fn prev_at_or_before(&self, at: OffsetDateTime, zone: &TimeZone) -> Option<OffsetDateTime> {
        to_offset_date_time(self.prev_timestamp(to_timestamp(at)?, zone)?)
    }

    /// Walks forward through the stretches of one UTC offset between the zone's transitions;
    /// within one, wall-clock time moves with real time, so the first matching wall time is
    /// the first run. Only the jumps between stretches need the DST rules.
    fn next_timestamp(&self, after: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
        let horizon = after.checked_add(HORIZON).unwrap_or(Timestamp::MAX);
        let mut offset = zone.to_offset(after);
        // A fixed time already shown before a fold does not run again in the repeat; the
        // wall time the stretch before this one ended at says what was shown.
        let mut shown_until = zone
            .preceding(after.checked_add(SignedDuration::from_nanos(1)).ok()?)
            .next()
            .and_then(|t| Some(offset_before(zone, t.timestamp())?.to_datetime(t.timestamp())));
        let mut from = floor_minute(offset.to_datetime(after))
            .checked_add(MINUTE)
            .ok()?;
        let mut transitions = zone.following(after);
        loop {
            let next = transitions.next().filter(|t| t.timestamp() < horizon);
            let end = next.as_ref().map_or(horizon, |t| t.timestamp());
            if !self.wildcard
                && let Some(shown) = shown_until
            {
                from = from.max(ceil_minute(shown));
            }
            if let Some(wall) = self.first_match(from, offset.to_datetime(end)) {
                return offset.to_timestamp(wall).ok();
            }
            let next = next?;
            let (at, new) = (next.timestamp(), next.offset());
            if !self.wildcard && new > offset && self.matches_in_gap(at, offset, new) {
                return Some(at);
            }
            shown_until = Some(offset.to_datetime(at));
            offset = new;
            from = ceil_minute(offset.to_datetime(at));
        }
    }

    /// [`next_timestamp`](Self::next_timestamp) backwards.
    fn prev_timestamp(&self, at: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
        let horizon = at.checked_sub(HORIZON).unwrap_or(Timestamp::MIN);
        let mut offset = zone.to_offset(at);
        let mut upto = floor_minute(offset.to_datetime(at));
        // Transitions at or before `at`: one exactly at `at` begins the stretch holding it.
        let mut transitions = zone.preceding(at.checked_add(SignedDuration::from_nanos(1)).ok()?);
        loop {
            let start = transitions
                .next()
                .map(|t| t.timestamp())
                .filter(|&t| t > horizon);
            let begins = start.unwrap_or(horizon);
            let before = match start {
                Some(t) => offset_before(zone, t)?,
                None => offset,
            };
            let mut from = ceil_minute(offset.to_datetime(begins));
            if !self.wildcard {
                // Wall times the stretch before showed ran there, not in this repeat.
                from = from.max(ceil_minute(before.to_datetime(begins)));
            }
            if let Some(wall) = self.last_match(upto, from) {
                return offset.to_timestamp(wall).ok();
            }
            let start = start?;
            if !self.wildcard && offset > before && self.matches_in_gap(start, before, offset) {
                return Some(start);
            }
            upto = ceil_minute(before.to_datetime(start))
                .checked_sub(MINUTE)
                .ok()?;
            offset = before;
        }
    }

    /// Whether a wall time the clock skips at `at`, jumping from `before` to `after`, matches.
    fn matches_in_gap(&self, at: Timestamp, before: Offset, after: Offset) -> bool {
        self.first_match(ceil_minute(before.to_datetime(at)), after.to_datetime(at))
            .is_some()
    }

    /// The day fields, with Vixie's either-or rule.
    fn day_matches(&self, date: Date) -> bool {
        let day = self.days.has(date.day());
        let weekday = self.weekdays.has(date.weekday().to_sunday_zero_offset());
        if self.days_star || self.weekdays_star {
            day && weekday
        } else {
            day || weekday
        }
    }

    /// The first matching wall time (whole minutes) at or after `from` and before `until`,
    /// jumping by fields: a month that does not match is skipped whole, then a day, an hour.
    fn first_match(&self, from: DateTime, until: DateTime) -> Option<DateTime> {
        let mut date = from.date();
        let (mut hour, mut minute) = (from.hour(), from.minute());
        while date <= until.date() {
            if !self.months.has(date.month()) {
                date = date.last_of_month().tomorrow().ok()?;
                (hour, minute) = (0, 0);
                continue;
            }
            if self.day_matches(date)
                && let Some(h) = self.hours.first_from(hour)
            {
                if h != hour {
                    minute = 0;
                }
                if let Some(m) = self.minutes.first_from(minute) {
                    let found = date.to_datetime(Time::new(h, m, 0, 0).ok()?);
                    return (found < until).then_some(found);
                }
                if h < 23 {
                    (hour, minute) = (h + 1, 0);
                    continue;
                }
            }
            date = date.tomorrow().ok()?;
            (hour, minute) = (0, 0);
        }
        None
    }

    /// The last matching wall time (whole minutes) at or before `upto` and at or after
    /// `from`; [`first_match`](Self::first_match) backwards.
    fn last_match(&self, upto: DateTime, from: DateTime) -> Option<DateTime> {
        let mut date = upto.date();
        let (mut hour, mut minute) = (upto.hour(), upto.minute());
        while date >= from.date() {
            if !self.months.has(date.month()) {
                date = date.first_of_month().yesterday().ok()?;
                (hour, minute) = (23, 59);
                continue;
            }
            if self.day_matches(date)
                && let Some(h) = self.hours.last_upto(hour)
            {
                if h != hour {
                    minute = 59;
                }
                if let Some(m) = self.minutes.last_upto(minute) {
                    let found = date.to_datetime(Time::new(h, m, 0, 0).ok()?);
                    return (found >= from).then_some(found);
                }
                if h > 0 {
                    (hour, minute) = (h - 1, 59);
                    continue;
                }
            }
            date = date.yesterday().ok()?;
            (hour, minute) = (23, 59);
        }
        None
    }
}

impl fmt::Display for Cron {
    /// The expression as written, with single spaces between fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Cron {
    type Err = String;

    fn from_str(text: &str) -> Result<Cron, String> {
        Cron::parse(text)
    }
}

/// The zone named `name` (IANA, e.g. `Europe/Berlin`, or `UTC`); `Err` says what is wrong.
/// The same names as time windows' `location`.
pub fn zone(name: &str) -> Result<TimeZone, String> {
    crate::tz::zone(name, "")
}

// ---- parsing -----------------------------------------------------------------------------

/// `@daily` and the like, alone.
fn macro_(words: &[&str]) -> Result<Cron, String> {
    let name = words[0].to_ascii_lowercase();
    let Some(&(name, fields)) = MACROS.iter().find(|(m, _)| *m == name) else {
        let hint = closest(&name, MACROS.map(|(m, _)| m))
            .map(|c| format!(" (did you mean `{c}`?)"))
            .unwrap_or_default();
        return Err(format!(
            "`{}` is not a macro: write @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly{hint}",
            words[0]
        ));
    };
    if words.len() > 1 {
        return Err(format!(
            "`{name}` stands for all 5 fields: remove what follows it (`{}`)",
            words[1..].join(" ")
        ));
    }
    Ok(Cron {
        text: name.to_owned(),
        ..Cron::parse(fields)?
    })
}

fn field_count(words: &[&str]) -> String {
    let n = words.len();
    let fix = if words.iter().any(|w| w.starts_with(',') || w.ends_with(',')) {
        "write lists without spaces, such as `1,15`"
    } else if n < 5 {
        "write `*` for a field that matches any value"
    } else {
        "there is no seconds or year field"
    };
    format!("expected 5 fields (minute hour day-of-month month day-of-week), found {n}: {fix}")
}

/// One field: a comma-separated list of items.
fn field(spec: &Spec, text: &str) -> Result<Set, String> {
    let mut bits = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!(
                "`{text}` has an empty item: remove the extra comma"
            ));
        }
        bits |= self::item(spec, item)?;
    }
    // Sunday is both 0 and 7.
    if spec.max > spec.star_max && bits >> spec.max & 1 == 1 {
        bits = bits & !(1 << spec.max) | 1 << spec.min;
    }
    Ok(Set(bits))
}

/// One item of a list: `*`, a value, or a range, perhaps with a step.
fn item(spec: &Spec, item: &str) -> Result<u64, String> {
    let (range, step) = match item.split_once('/') {
        Some((range, text)) => (range, Some((text, step(item, text)?))),
        None => (item, None),
    };
    let (first, last) = if range == "*" {
        (spec.min, spec.star_max)
    } else if let Some((a, b)) = range.split_once('-') {
        if a.is_empty() || b.is_empty() || b.contains('-') {
            return Err(format!(
                "`{item}` is not a range: write it as `first-last`, such as `{}-{}`",
                spec.min + 1,
                spec.star_max - 1
            ));
        }
        let (first, last) = (value(spec, a)?, value(spec, b)?);
        if first > last {
            return Err(backwards(spec, item, a, b, step.is_some()));
        }
        (first, last)
    } else {
        let v = value(spec, range)?;
        if let Some((text, _)) = step {
            let end = spelled_like(spec, range, spec.star_max);
            return Err(format!(
                "`{item}` steps from a single value: write `{range}-{end}/{text}` to step from {range} to the end, or `*/{text}`"
            ));
        }
        (v, v)
    };
    let step = step.map_or(1, |(_, n)| n);
    // Only the first value would match: a mistake, or a roundabout way to write one value.
    if step > u32::from((last - first).max(1).unsigned_abs()) {
        return Err(format!(
            "`{item}`: step {step} is larger than the range {first}-{last}, so only {first} would match: write `{first}` if that is meant"
        ));
    }
    Ok((first..=last)
        .step_by(step as usize)
        .fold(0, |bits, v| bits | 1 << v))
}

/// The step after `/`: a whole number, 1 or more.
fn step(item: &str, text: &str) -> Result<u32, String> {
    if text.is_empty() {
        return Err(format!(
            "`{item}`: the step is missing: write a whole number after `/`, such as `*/15`"
        ));
    }
    match text.parse::<u32>() {
        Ok(0) => Err(format!(
            "`{item}`: a step of 0 never moves: write 1 or more"
        )),
        Ok(n) if text.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!(
            "`{item}`: `{text}` is not a step: write a whole number, such as `*/15`"
        )),
    }
}

/// A backwards range, with how to split it at the field's end.
fn backwards(spec: &Spec, item: &str, a: &str, b: &str, stepped: bool) -> String {
    let piece = |from: &str, to: String| {
        if from.eq_ignore_ascii_case(&to) {
            to
        } else {
            format!("{from}-{to}")
        }
    };
    let fix = if stepped {
        "split it in two ranges".to_owned()
    } else {
        format!(
            "split it, `{},{}`",
            piece(a, spelled_like(spec, a, spec.star_max)),
            piece(&spelled_like(spec, b, spec.min), b.to_owned()),
        )
    };
    format!("`{item}` runs backwards (ranges go from low to high): {fix}")
}

/// `v` as a name if `like` is one, else as a number.
fn spelled_like(spec: &Spec, like: &str, v: i8) -> String {
    let named = like.bytes().any(|b| b.is_ascii_alphabetic());
    match spec.names.get((v - spec.min) as usize) {
        Some(name) if named => (*name).to_owned(),
        _ => v.to_string(),
    }
}

/// A number or a name.
fn value(spec: &Spec, token: &str) -> Result<i8, String> {
    if token.bytes().all(|b| b.is_ascii_digit()) {
        return match token.parse::<i8>() {
            Ok(v) if (spec.min..=spec.max).contains(&v) => Ok(v),
            _ => {
                let hint = match (spec.number, token) {
                    (2, "24") => " (midnight is 0)",
                    (5, _) => " (0 and 7 are both Sunday)",
                    _ => "",
                };
                Err(format!(
                    "{token} is outside {}-{}{hint}",
                    spec.min, spec.max
                ))
            }
        };
    }
    let lower = token.to_ascii_lowercase();
    if let Some(i) = spec.names.iter().position(|n| *n == lower) {
        return Ok(spec.min + i as i8);
    }
    Err(format!(
        "`{token}` is not {}: write {}{}",
        spec.noun,
        spec.how,
        not_a_value_hint(spec, &lower)
    ))
}

/// Why a word is not a value, when that can be guessed.
fn not_a_value_hint(spec: &Spec, lower: &str) -> String {
    if lower == "?" {
        return " (`?` is Quartz's \"no value\": write `*`)".to_owned();
    }
    if let Some(short) = lower.get(..3)
        && lower.len() > 3
        && spec.names.contains(&short)
    {
        return format!(" (names are three letters: `{short}`)");
    }
    if let Some(other) = SPECS
        .iter()
        .find(|s| s.number != spec.number && s.names.contains(&lower))
    {
        return format!(
            " (`{lower}` is {}: that is field {})",
            other.noun, other.number
        );
    }
    closest(lower, spec.names.iter().copied())
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

// ---- time --------------------------------------------------------------------------------

use crate::tz::{to_offset_date_time, to_timestamp};

/// The offset in force just before the transition at `at`.
fn offset_before(zone: &TimeZone, at: Timestamp) -> Option<Offset> {
    let just_before = at.checked_sub(SignedDuration::from_nanos(1)).ok()?;
    Some(zone.to_offset(just_before))
}

/// The whole minute `dt` is in.
fn floor_minute(dt: DateTime) -> DateTime {
    Time::new(dt.hour(), dt.minute(), 0, 0).map_or(dt, |t| dt.date().to_datetime(t))
}

/// The first whole minute at or after `dt`.
fn ceil_minute(dt: DateTime) -> DateTime {
    let floor = floor_minute(dt);
    if floor == dt {
        dt
    } else {
        floor.checked_add(MINUTE).unwrap_or(DateTime::MAX)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn cron(text: &str) -> Cron {
        Cron::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn err(text: &str) -> String {
        match Cron::parse(text) {
            Ok(c) => panic!("{text} parsed: {c:?}"),
            Err(e) => e,
        }
    }

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    fn members(set: Set) -> Vec<i8> {
        (0..64).filter(|&v| set.has(v)).collect()
    }

    /// The five fields' members, to compare expressions written differently.
    fn sets(c: &Cron) -> [Vec<i8>; 5] {
        [c.minutes, c.hours, c.days, c.months, c.weekdays].map(members)
    }

    fn next(expr: &str, after: OffsetDateTime, zone: &str) -> Option<OffsetDateTime> {
        cron(expr).next_after(after, &tz(zone))
    }

    fn prev(expr: &str, at: OffsetDateTime, zone: &str) -> Option<OffsetDateTime> {
        cron(expr).prev_at_or_before(at, &tz(zone))
    }

    /// Follows `next_after` from `after` and checks it runs at `expected` in turn; then
    /// walks back with `prev_at_or_before`, which must find the same runs, each exactly.
    #[track_caller]
    fn runs(expr: &str, zone: &str, after: OffsetDateTime, expected: &[OffsetDateTime]) {
        let (c, zone) = (cron(expr), tz(zone));
        let mut at = after;
        for &want in expected {
            let got = c.next_after(at, &zone);
            assert_eq!(got, Some(want), "{expr}: next after {at}");
            at = want;
        }
        for pair in expected.windows(2) {
            let (earlier, later) = (pair[0], pair[1]);
            assert_eq!(c.prev_at_or_before(later, &zone), Some(later), "{expr}");
            let just_before = later - time::Duration::nanoseconds(1);
            assert_eq!(
                c.prev_at_or_before(just_before, &zone),
                Some(earlier),
                "{expr}: prev at {just_before}"
            );
        }
        if let Some(&first) = expected.first() {
            let before = c.prev_at_or_before(first - time::Duration::nanoseconds(1), &zone);
            assert!(before.is_none_or(|b| b <= after), "{expr}: {before:?}");
        }
    }

    // ---- parsing -----------------------------------------------------------------------------

    #[test]
    fn stars_cover_each_field() {
        let c = cron("* * * * *");
        assert_eq!(sets(&c)[0], (0..=59).collect::<Vec<_>>());
        assert_eq!(sets(&c)[1], (0..=23).collect::<Vec<_>>());
        assert_eq!(sets(&c)[2], (1..=31).collect::<Vec<_>>());
        assert_eq!(sets(&c)[3], (1..=12).collect::<Vec<_>>());
        assert_eq!(sets(&c)[4], (0..=6).collect::<Vec<_>>());
        assert!(c.days_star && c.weekdays_star && c.wildcard);
    }

    #[test]
    fn lists_ranges_steps_and_names() {
        let c = cron("1,15 2-4 */10 jan-mar/2 MON,Fri,7");
        assert_eq!(
            sets(&c),
            [
                vec![1, 15],
                vec![2, 3, 4],
                vec![1, 11, 21, 31],
                vec![1, 3],
                vec![0, 1, 5]
            ]
        );
        assert!(!c.wildcard && c.days_star && !c.weekdays_star);
        assert_eq!(sets(&cron("10-50/10 * * * *"))[0], [10, 20, 30, 40, 50]);
        assert_eq!(sets(&cron("*/15 * * * *"))[0], [0, 15, 30, 45]);
        assert_eq!(
            sets(&cron("*/7 * * * *"))[0],
            [0, 7, 14, 21, 28, 35, 42, 49, 56]
        );
        assert_eq!(sets(&cron("0 */5 * * *"))[1], [0, 5, 10, 15, 20]);
        assert_eq!(sets(&cron("0 0 * * 1-5/2"))[4], [1, 3, 5]);
        assert_eq!(sets(&cron("0 0 * * 5-7"))[4], [0, 5, 6]);
        assert_eq!(sets(&cron("0 0 * * sun-sat"))[4], [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(sets(&cron("0 0 * * 0-7"))[4], [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(
            sets(&cron("0 0 1,1,2 * *"))[2],
            [1, 2],
            "repeats are harmless"
        );
        assert_eq!(sets(&cron("59 23 31 12 6"))[0], [59]);
        assert_eq!(sets(&cron("0005 * * * *"))[0], [5]);
    }

    #[test]
    fn names_in_any_case_and_both_sundays() {
        let months = [
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ];
        for (i, name) in months.iter().enumerate() {
            let n = i as i8 + 1;
            for written in [
                name.to_string(),
                name.to_uppercase(),
                name[..1].to_uppercase() + &name[1..],
            ] {
                assert_eq!(
                    sets(&cron(&format!("0 0 1 {written} *")))[3],
                    [n],
                    "{written}"
                );
            }
        }
        let days = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
        for (i, name) in days.iter().enumerate() {
            for written in [name.to_string(), name.to_uppercase()] {
                assert_eq!(
                    sets(&cron(&format!("0 0 * * {written}")))[4],
                    [i as i8],
                    "{written}"
                );
            }
        }
        let sunday = sets(&cron("0 0 * * 0"));
        assert_eq!(sets(&cron("0 0 * * 7")), sunday);
        assert_eq!(sets(&cron("0 0 * * Sun")), sunday);
        assert_eq!(sets(&cron("0 0 * * 0,7")), sunday);
    }

    #[test]
    fn macros_stand_for_their_fields() {
        for (name, fields) in [
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
            ("@monthly", "0 0 1 * *"),
            ("@weekly", "0 0 * * 0"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@hourly", "0 * * * *"),
        ] {
            let (m, f) = (cron(name), cron(fields));
            assert_eq!(sets(&m), sets(&f), "{name}");
            assert_eq!(
                (m.days_star, m.weekdays_star, m.wildcard),
                (f.days_star, f.weekdays_star, f.wildcard),
                "{name}"
            );
            assert_eq!(m.to_string(), name);
        }
        assert_eq!(cron(" @Daily ").to_string(), "@daily");
        assert!(cron("@hourly").wildcard);
        assert!(!cron("@daily").wildcard);
    }

    #[test]
    fn display_gives_the_expression_back() {
        for (written, shown) in [
            ("  0   9 * *\tmon-fri ", "0 9 * * mon-fri"),
            ("*/15 * * * *", "*/15 * * * *"),
            ("10-50/10 1,2 1 JAN Sun", "10-50/10 1,2 1 JAN Sun"),
            ("@weekly", "@weekly"),
        ] {
            let c = cron(written);
            assert_eq!(c.to_string(), shown);
            assert_eq!(cron(&c.to_string()), c, "{written}");
        }
        assert_eq!("0 9 * * 1".parse::<Cron>(), Ok(cron("0 9 * * 1")));
    }

    #[test]
    fn values_outside_a_field() {
        for (expr, message) in [
            ("0 25 * * *", "field 2 (hour): 25 is outside 0-23"),
            (
                "0 24 * * *",
                "field 2 (hour): 24 is outside 0-23 (midnight is 0)",
            ),
            ("60 * * * *", "field 1 (minute): 60 is outside 0-59"),
            ("0 0 0 * *", "field 3 (day of month): 0 is outside 1-31"),
            ("0 0 32 * *", "field 3 (day of month): 32 is outside 1-31"),
            ("0 0 * 0 *", "field 4 (month): 0 is outside 1-12"),
            ("0 0 * 13 *", "field 4 (month): 13 is outside 1-12"),
            (
                "0 0 * * 8",
                "field 5 (day of week): 8 is outside 0-7 (0 and 7 are both Sunday)",
            ),
            (
                "1,99999999999 * * * *",
                "field 1 (minute): 99999999999 is outside 0-59",
            ),
            (
                "0 1-24 * * *",
                "field 2 (hour): 24 is outside 0-23 (midnight is 0)",
            ),
        ] {
            assert_eq!(err(expr), message, "{expr}");
        }
    }

    #[test]
    fn words_that_are_not_values() {
        for (expr, message) in [
            (
                "x * * * *",
                "field 1 (minute): `x` is not a minute: write a number 0-59",
            ),
            (
                "+5 * * * *",
                "field 1 (minute): `+5` is not a minute: write a number 0-59",
            ),
            (
                "0 noon * * *",
                "field 2 (hour): `noon` is not an hour: write a number 0-23",
            ),
            (
                "0 0 L * *",
                "field 3 (day of month): `L` is not a day of the month: write a number 1-31",
            ),
            (
                "0 0 ? * *",
                "field 3 (day of month): `?` is not a day of the month: write a number 1-31 (`?` is Quartz's \"no value\": write `*`)",
            ),
            (
                "0 0 * * fry",
                "field 5 (day of week): `fry` is not a day of the week: write 0-7 or sun, mon, … sat (did you mean `fri`?)",
            ),
            (
                "0 0 * * Monday",
                "field 5 (day of week): `Monday` is not a day of the week: write 0-7 or sun, mon, … sat (names are three letters: `mon`)",
            ),
            (
                "0 0 * sept *",
                "field 4 (month): `sept` is not a month: write 1-12 or jan, feb, … dec (names are three letters: `sep`)",
            ),
            (
                "0 0 * mon *",
                "field 4 (month): `mon` is not a month: write 1-12 or jan, feb, … dec (`mon` is a day of the week: that is field 5)",
            ),
            (
                "0 0 * * Jan",
                "field 5 (day of week): `Jan` is not a day of the week: write 0-7 or sun, mon, … sat (`jan` is a month: that is field 4)",
            ),
            (
                "0 0 * * mon-fry",
                "field 5 (day of week): `fry` is not a day of the week: write 0-7 or sun, mon, … sat (did you mean `fri`?)",
            ),
        ] {
            assert_eq!(err(expr), message, "{expr}");
        }
    }

    #[test]
    fn malformed_lists_ranges_and_steps() {
        for (expr, message) in [
            (
                "1,,2 * * * *",
                "field 1 (minute): `1,,2` has an empty item: remove the extra comma",
            ),
            (
                "0 1, * * *",
                "field 2 (hour): `1,` has an empty item: remove the extra comma",
            ),
            (
                "1-2-3 * * * *",
                "field 1 (minute): `1-2-3` is not a range: write it as `first-last`, such as `1-58`",
            ),
            (
                "0 0 * * -5",
                "field 5 (day of week): `-5` is not a range: write it as `first-last`, such as `1-5`",
            ),
            (
                "0 0 * * 1-",
                "field 5 (day of week): `1-` is not a range: write it as `first-last`, such as `1-5`",
            ),
            (
                "5-1 * * * *",
                "field 1 (minute): `5-1` runs backwards (ranges go from low to high): split it, `5-59,0-1`",
            ),
            (
                "0 22-2 * * *",
                "field 2 (hour): `22-2` runs backwards (ranges go from low to high): split it, `22-23,0-2`",
            ),
            (
                "0 0 * * fri-mon",
                "field 5 (day of week): `fri-mon` runs backwards (ranges go from low to high): split it, `fri-sat,sun-mon`",
            ),
            (
                "0 0 * * sat-sun",
                "field 5 (day of week): `sat-sun` runs backwards (ranges go from low to high): split it, `sat,sun`",
            ),
            (
                "0 0 * * 6-0",
                "field 5 (day of week): `6-0` runs backwards (ranges go from low to high): split it, `6,0`",
            ),
            (
                "0 0 * nov-feb *",
                "field 4 (month): `nov-feb` runs backwards (ranges go from low to high): split it, `nov-dec,jan-feb`",
            ),
            (
                "0 22-2/2 * * *",
                "field 2 (hour): `22-2/2` runs backwards (ranges go from low to high): split it in two ranges",
            ),
            (
                "*/0 * * * *",
                "field 1 (minute): `*/0`: a step of 0 never moves: write 1 or more",
            ),
            (
                "*/x * * * *",
                "field 1 (minute): `*/x`: `x` is not a step: write a whole number, such as `*/15`",
            ),
            (
                "*/-5 * * * *",
                "field 1 (minute): `*/-5`: `-5` is not a step: write a whole number, such as `*/15`",
            ),
            (
                "1/2/3 * * * *",
                "field 1 (minute): `1/2/3`: `2/3` is not a step: write a whole number, such as `*/15`",
            ),
            (
                "*/ * * * *",
                "field 1 (minute): `*/`: the step is missing: write a whole number after `/`, such as `*/15`",
            ),
            (
                "*/60 * * * *",
                "field 1 (minute): `*/60`: step 60 is larger than the range 0-59, so only 0 would match: write `0` if that is meant",
            ),
            (
                "0 10-20/15 * * *",
                "field 2 (hour): `10-20/15`: step 15 is larger than the range 10-20, so only 10 would match: write `10` if that is meant",
            ),
            (
                "0 0 * * */7",
                "field 5 (day of week): `*/7`: step 7 is larger than the range 0-6, so only 0 would match: write `0` if that is meant",
            ),
            (
                "5/15 * * * *",
                "field 1 (minute): `5/15` steps from a single value: write `5-59/15` to step from 5 to the end, or `*/15`",
            ),
            (
                "0 0 * * mon/2",
                "field 5 (day of week): `mon/2` steps from a single value: write `mon-sat/2` to step from mon to the end, or `*/2`",
            ),
        ] {
            assert_eq!(err(expr), message, "{expr}");
        }
        // A step as large as the range still names two values.
        assert_eq!(sets(&cron("*/59 * * * *"))[0], [0, 59]);
        assert_eq!(sets(&cron("0 5-6/1 * * *"))[1], [5, 6]);
    }

    #[test]
    fn wrong_shapes_and_macros() {
        for (expr, message) in [
            (
                "",
                "the expression is empty: write 5 fields such as `0 9 * * mon-fri`, or a macro such as `@daily`",
            ),
            (
                "   ",
                "the expression is empty: write 5 fields such as `0 9 * * mon-fri`, or a macro such as `@daily`",
            ),
            (
                "0 0 * *",
                "expected 5 fields (minute hour day-of-month month day-of-week), found 4: write `*` for a field that matches any value",
            ),
            (
                "0 0 0 * * *",
                "expected 5 fields (minute hour day-of-month month day-of-week), found 6: there is no seconds or year field",
            ),
            (
                "0 1, 15 * * *",
                "expected 5 fields (minute hour day-of-month month day-of-week), found 6: write lists without spaces, such as `1,15`",
            ),
            (
                "@dayly",
                "`@dayly` is not a macro: write @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly (did you mean `@daily`?)",
            ),
            (
                "@reboot",
                "`@reboot` is not a macro: write @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly",
            ),
            (
                "@daily 5",
                "`@daily` stands for all 5 fields: remove what follows it (`5`)",
            ),
            (
                "@Weekly 0 0 * * 0",
                "`@weekly` stands for all 5 fields: remove what follows it (`0 0 * * 0`)",
            ),
        ] {
            assert_eq!(err(expr), message, "{expr:?}");
        }
    }

    #[test]
    fn zone_names() {
        assert_eq!(zone("Europe/Berlin"), Ok(tz("Europe/Berlin")));
        assert_eq!(zone("UTC"), Ok(TimeZone::UTC));
        let e = zone("Europe/Berln").unwrap_err();
        assert_eq!(
            e,
            "`Europe/Berln` is not an IANA time zone name: did you mean `Europe/Berlin`?"
        );
        let e = zone("Middle/Earth").unwrap_err();
        assert!(
            e.starts_with(
                "`Middle/Earth` is not an IANA time zone name: write one such as `Europe/Berlin`"
            ),
            "{e}"
        );
    }

    // ---- next and previous runs, in UTC --------------------------------------------------------

    #[test]
    fn minutes_and_hours() {
        assert_eq!(
            next("* * * * *", datetime!(2026-05-05 10:00 UTC), "UTC"),
            Some(datetime!(2026-05-05 10:01 UTC))
        );
        assert_eq!(
            next("* * * * *", datetime!(2026-05-05 10:00:30.5 UTC), "UTC"),
            Some(datetime!(2026-05-05 10:01 UTC)),
            "strictly after, on whole minutes"
        );
        assert_eq!(
            prev("* * * * *", datetime!(2026-05-05 10:00:30.5 UTC), "UTC"),
            Some(datetime!(2026-05-05 10:00 UTC))
        );
        runs(
            "*/15 * * * *",
            "UTC",
            datetime!(2026-05-05 10:07 UTC),
            &[
                datetime!(2026-05-05 10:15 UTC),
                datetime!(2026-05-05 10:30 UTC),
                datetime!(2026-05-05 10:45 UTC),
                datetime!(2026-05-05 11:00 UTC),
            ],
        );
        runs(
            "10-50/20 9-17/4 * * *",
            "UTC",
            datetime!(2026-05-05 13:30 UTC),
            &[
                datetime!(2026-05-05 13:50 UTC),
                datetime!(2026-05-05 17:10 UTC),
                datetime!(2026-05-05 17:30 UTC),
                datetime!(2026-05-05 17:50 UTC),
                datetime!(2026-05-06 09:10 UTC),
            ],
        );
        runs(
            "59 23 * * *",
            "UTC",
            datetime!(2026-12-31 12:00 UTC),
            &[
                datetime!(2026-12-31 23:59 UTC),
                datetime!(2027-01-01 23:59 UTC),
            ],
        );
        // In a fixed-offset zone, wall time is UTC shifted.
        assert_eq!(
            cron("30 9 * * *").next_after(
                datetime!(2026-05-05 00:00 UTC),
                &TimeZone::fixed(jiff::tz::offset(5))
            ),
            Some(datetime!(2026-05-05 04:30 UTC))
        );
        // The answer is the same instant whatever offset `after` is written in.
        assert_eq!(
            next("30 9 * * *", datetime!(2026-05-05 11:45 +02:00), "UTC"),
            Some(datetime!(2026-05-06 09:30 UTC))
        );
    }

    #[test]
    fn days_months_and_month_ends() {
        runs(
            "0 0 1 * *",
            "UTC",
            datetime!(2026-01-31 12:00 UTC),
            &[
                datetime!(2026-02-01 00:00 UTC),
                datetime!(2026-03-01 00:00 UTC),
            ],
        );
        runs(
            "0 12 * 3,sep *",
            "UTC",
            datetime!(2026-04-01 00:00 UTC),
            &[
                datetime!(2026-09-01 12:00 UTC),
                datetime!(2026-09-02 12:00 UTC),
            ],
        );
        runs(
            "0 12 * 3,sep *",
            "UTC",
            datetime!(2026-09-30 12:00 UTC),
            &[datetime!(2027-03-01 12:00 UTC)],
        );
        // Months without a 31st (or a 30th) are passed over.
        runs(
            "0 0 31 * *",
            "UTC",
            datetime!(2026-01-31 00:00 UTC),
            &[
                datetime!(2026-03-31 00:00 UTC),
                datetime!(2026-05-31 00:00 UTC),
                datetime!(2026-07-31 00:00 UTC),
                datetime!(2026-08-31 00:00 UTC),
                datetime!(2026-10-31 00:00 UTC),
            ],
        );
        runs(
            "0 0 30 * *",
            "UTC",
            datetime!(2026-01-30 00:00 UTC),
            &[datetime!(2026-03-30 00:00 UTC)],
        );
        runs(
            "30 6 28-31 2 *",
            "UTC",
            datetime!(2026-01-01 00:00 UTC),
            &[
                datetime!(2026-02-28 06:30 UTC),
                datetime!(2027-02-28 06:30 UTC),
                datetime!(2028-02-28 06:30 UTC),
                datetime!(2028-02-29 06:30 UTC),
            ],
        );
    }

    #[test]
    fn leap_days() {
        runs(
            "0 0 29 2 *",
            "UTC",
            datetime!(2026-01-01 00:00 UTC),
            &[
                datetime!(2028-02-29 00:00 UTC),
                datetime!(2032-02-29 00:00 UTC),
            ],
        );
        // 2100 is not a leap year: the longest wait there is, within the horizon.
        runs(
            "0 0 29 2 *",
            "UTC",
            datetime!(2096-03-01 00:00 UTC),
            &[
                datetime!(2104-02-29 00:00 UTC),
                datetime!(2108-02-29 00:00 UTC),
            ],
        );
        assert_eq!(
            prev("0 0 29 2 *", datetime!(2104-02-28 23:59 UTC), "UTC"),
            Some(datetime!(2096-02-29 00:00 UTC))
        );
        assert_eq!(
            next(
                "0 0 29 2 *",
                datetime!(2096-03-01 00:00 UTC),
                "America/New_York"
            ),
            Some(datetime!(2104-02-29 05:00 UTC))
        );
    }

    #[test]
    fn nothing_matches_gives_none() {
        for expr in ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30,31 feb *"] {
            for zone in ["UTC", "America/New_York"] {
                assert_eq!(
                    next(expr, datetime!(2026-05-05 00:00 UTC), zone),
                    None,
                    "{expr}"
                );
                assert_eq!(
                    prev(expr, datetime!(2026-05-05 00:00 UTC), zone),
                    None,
                    "{expr}"
                );
            }
        }
        // Near the ends of time there is nothing to find either, and no panic.
        let c = cron("* * * * *");
        let last = OffsetDateTime::new_utc(time::Date::MAX, time::Time::MIDNIGHT);
        assert_eq!(c.next_after(last, &TimeZone::UTC), None);
        let first = OffsetDateTime::new_utc(time::Date::MIN, time::Time::MIDNIGHT);
        assert_eq!(c.prev_at_or_before(first, &TimeZone::UTC), None);
        assert_eq!(
            c.next_after(datetime!(9999-12-30 12:00 UTC), &TimeZone::UTC),
            Some(datetime!(9999-12-30 12:01 UTC))
        );
        let ny = tz("America/New_York");
        assert_eq!(
            cron("0 0 30 2 *").next_after(datetime!(9999-01-01 00:00 UTC), &ny),
            None
        );
        assert_eq!(
            cron("0 0 30 2 *").prev_at_or_before(datetime!(-9999-12-31 00:00 UTC), &ny),
            None
        );
    }

    #[test]
    fn weekdays_and_either_day_field() {
        // 2026-05-01 is a Friday.
        runs(
            "0 17 * * fri",
            "UTC",
            datetime!(2026-05-01 17:00 UTC),
            &[
                datetime!(2026-05-08 17:00 UTC),
                datetime!(2026-05-15 17:00 UTC),
            ],
        );
        runs(
            "0 9 * * mon-fri",
            "UTC",
            datetime!(2026-05-01 09:00 UTC),
            &[
                datetime!(2026-05-04 09:00 UTC),
                datetime!(2026-05-05 09:00 UTC),
            ],
        );
        // Both day fields restricted: either matches (the 13th is a Wednesday).
        runs(
            "0 0 13 * fri",
            "UTC",
            datetime!(2026-05-01 00:00 UTC),
            &[
                datetime!(2026-05-08 00:00 UTC),
                datetime!(2026-05-13 00:00 UTC),
                datetime!(2026-05-15 00:00 UTC),
            ],
        );
        // A day field starting with `*` leaves it to the other: both must match.
        runs(
            "0 0 */2 * fri",
            "UTC",
            datetime!(2026-05-01 00:00 UTC),
            &[
                datetime!(2026-05-15 00:00 UTC),
                datetime!(2026-05-29 00:00 UTC),
            ],
        );
        runs(
            "0 0 13 * */1",
            "UTC",
            datetime!(2026-05-01 00:00 UTC),
            &[
                datetime!(2026-05-13 00:00 UTC),
                datetime!(2026-06-13 00:00 UTC),
            ],
        );
        runs(
            "0 0 * * 7",
            "UTC",
            datetime!(2026-05-06 00:00 UTC),
            &[datetime!(2026-05-10 00:00 UTC)],
        );
        // Friday the 13th: months run to it one by one.
        runs(
            "0 0 13 * *",
            "UTC",
            datetime!(2026-05-01 00:00 UTC),
            &[
                datetime!(2026-05-13 00:00 UTC),
                datetime!(2026-06-13 00:00 UTC),
            ],
        );
    }

    #[test]
    fn weekly_and_other_macros() {
        runs(
            "@weekly",
            "UTC",
            datetime!(2026-05-06 15:00 UTC),
            &[
                datetime!(2026-05-10 00:00 UTC),
                datetime!(2026-05-17 00:00 UTC),
            ],
        );
        runs(
            "@monthly",
            "UTC",
            datetime!(2026-05-06 15:00 UTC),
            &[
                datetime!(2026-06-01 00:00 UTC),
                datetime!(2026-07-01 00:00 UTC),
            ],
        );
        runs(
            "@yearly",
            "UTC",
            datetime!(2026-05-06 15:00 UTC),
            &[
                datetime!(2027-01-01 00:00 UTC),
                datetime!(2028-01-01 00:00 UTC),
            ],
        );
        runs(
            "@hourly",
            "UTC",
            datetime!(2026-05-06 15:00 UTC),
            &[
                datetime!(2026-05-06 16:00 UTC),
                datetime!(2026-05-06 17:00 UTC),
            ],
        );
        // Weekly on Fridays at 17:00 in New York, in summer and in winter time.
        runs(
            "0 17 * * fri",
            "America/New_York",
            datetime!(2026-10-28 00:00 UTC),
            &[
                datetime!(2026-10-30 21:00 UTC),
                datetime!(2026-11-06 22:00 UTC),
            ],
        );
    }

    // ---- daylight saving time ---------------------------------------------------------------

    #[test]
    fn new_york_springs_forward() {
        // 2026-03-08 02:00 EST (07:00 UTC) becomes 03:00 EDT.
        let ny = "America/New_York";
        runs(
            "30 1 * * *",
            ny,
            datetime!(2026-03-07 12:00 UTC),
            &[
                datetime!(2026-03-08 06:30 UTC),
                datetime!(2026-03-09 05:30 UTC),
            ],
        );
        // 02:30 does not exist that day: it runs as the clock reaches 03:00.
        runs(
            "30 2 * * *",
            ny,
            datetime!(2026-03-07 00:00 UTC),
            &[
                datetime!(2026-03-07 07:30 UTC),
                datetime!(2026-03-08 07:00 UTC),
                datetime!(2026-03-09 06:30 UTC),
            ],
        );
        runs(
            "0 3 * * *",
            ny,
            datetime!(2026-03-07 00:00 UTC),
            &[
                datetime!(2026-03-07 08:00 UTC),
                datetime!(2026-03-08 07:00 UTC),
                datetime!(2026-03-09 07:00 UTC),
            ],
        );
        // Several times in the gap, and 03:00 itself, run once.
        runs(
            "0,30 2-3 * * *",
            ny,
            datetime!(2026-03-08 06:30 UTC),
            &[
                datetime!(2026-03-08 07:00 UTC),
                datetime!(2026-03-08 07:30 UTC),
                datetime!(2026-03-09 06:00 UTC),
            ],
        );
        // What repeats through the day keeps its pace: the skipped 02:30 does not run.
        runs(
            "30 * * * *",
            ny,
            datetime!(2026-03-08 06:00 UTC),
            &[
                datetime!(2026-03-08 06:30 UTC),
                datetime!(2026-03-08 07:30 UTC),
                datetime!(2026-03-08 08:30 UTC),
            ],
        );
        runs(
            "*/30 2 * * *",
            ny,
            datetime!(2026-03-07 12:00 UTC),
            &[
                datetime!(2026-03-09 06:00 UTC),
                datetime!(2026-03-09 06:30 UTC),
            ],
        );
        // Asked at the moment of the jump and just before it.
        assert_eq!(
            prev("30 2 * * *", datetime!(2026-03-08 07:00 UTC), ny),
            Some(datetime!(2026-03-08 07:00 UTC))
        );
        assert_eq!(
            prev("30 2 * * *", datetime!(2026-03-08 06:59:59 UTC), ny),
            Some(datetime!(2026-03-07 07:30 UTC))
        );
        assert_eq!(
            next("30 2 * * *", datetime!(2026-03-08 06:59:59 UTC), ny),
            Some(datetime!(2026-03-08 07:00 UTC))
        );
    }

    #[test]
    fn new_york_falls_back() {
        // 2026-11-01 02:00 EDT (06:00 UTC) becomes 01:00 EST: 01:00-01:59 is shown twice.
        let ny = "America/New_York";
        runs(
            "30 1 * * *",
            ny,
            datetime!(2026-10-31 12:00 UTC),
            &[
                datetime!(2026-11-01 05:30 UTC),
                datetime!(2026-11-02 06:30 UTC),
            ],
        );
        runs(
            "0 1 * * *",
            ny,
            datetime!(2026-10-31 12:00 UTC),
            &[
                datetime!(2026-11-01 05:00 UTC),
                datetime!(2026-11-02 06:00 UTC),
            ],
        );
        runs(
            "30 2 * * *",
            ny,
            datetime!(2026-10-31 12:00 UTC),
            &[
                datetime!(2026-11-01 07:30 UTC),
                datetime!(2026-11-02 07:30 UTC),
            ],
        );
        runs(
            "0 3 * * *",
            ny,
            datetime!(2026-10-31 12:00 UTC),
            &[
                datetime!(2026-11-01 08:00 UTC),
                datetime!(2026-11-02 08:00 UTC),
            ],
        );
        // Asked during the repeat, after the first 01:30: it does not run again.
        assert_eq!(
            next("30 1 * * *", datetime!(2026-11-01 06:10 UTC), ny),
            Some(datetime!(2026-11-02 06:30 UTC))
        );
        assert_eq!(
            prev("30 1 * * *", datetime!(2026-11-01 06:45 UTC), ny),
            Some(datetime!(2026-11-01 05:30 UTC))
        );
        // What repeats through the day runs in both passes of the repeated hour.
        runs(
            "30 * * * *",
            ny,
            datetime!(2026-11-01 05:00 UTC),
            &[
                datetime!(2026-11-01 05:30 UTC),
                datetime!(2026-11-01 06:30 UTC),
                datetime!(2026-11-01 07:30 UTC),
            ],
        );
        runs(
            "*/30 1 * * *",
            ny,
            datetime!(2026-11-01 04:00 UTC),
            &[
                datetime!(2026-11-01 05:00 UTC),
                datetime!(2026-11-01 05:30 UTC),
                datetime!(2026-11-01 06:00 UTC),
                datetime!(2026-11-01 06:30 UTC),
                datetime!(2026-11-02 06:00 UTC),
            ],
        );
        assert_eq!(
            next("*/30 1 * * *", datetime!(2026-11-01 06:10 UTC), ny),
            Some(datetime!(2026-11-01 06:30 UTC))
        );
    }

    #[test]
    fn berlin_both_ways() {
        // 2026-03-29 02:00 CET (01:00 UTC) becomes 03:00 CEST; 2026-10-25 03:00 CEST
        // (01:00 UTC) becomes 02:00 CET.
        let berlin = "Europe/Berlin";
        runs(
            "30 2 * * *",
            berlin,
            datetime!(2026-03-28 00:00 UTC),
            &[
                datetime!(2026-03-28 01:30 UTC),
                datetime!(2026-03-29 01:00 UTC),
                datetime!(2026-03-30 00:30 UTC),
            ],
        );
        runs(
            "30 2 * * *",
            berlin,
            datetime!(2026-10-24 00:00 UTC),
            &[
                datetime!(2026-10-24 00:30 UTC),
                datetime!(2026-10-25 00:30 UTC),
                datetime!(2026-10-26 01:30 UTC),
            ],
        );
        runs(
            "0 3 * * *",
            berlin,
            datetime!(2026-03-28 12:00 UTC),
            &[
                datetime!(2026-03-29 01:00 UTC),
                datetime!(2026-03-30 01:00 UTC),
            ],
        );
        runs(
            "0 3 * * *",
            berlin,
            datetime!(2026-10-24 12:00 UTC),
            &[
                datetime!(2026-10-25 02:00 UTC),
                datetime!(2026-10-26 02:00 UTC),
            ],
        );
        runs(
            "30 1 * * *",
            berlin,
            datetime!(2026-03-28 12:00 UTC),
            &[
                datetime!(2026-03-29 00:30 UTC),
                datetime!(2026-03-29 23:30 UTC),
            ],
        );
        runs(
            "30 1 * * *",
            berlin,
            datetime!(2026-10-24 12:00 UTC),
            &[
                datetime!(2026-10-24 23:30 UTC),
                datetime!(2026-10-26 00:30 UTC),
            ],
        );
    }

    #[test]
    fn a_change_at_midnight_moves_the_day() {
        // Santiago: 2026-04-05 00:00 goes back to Saturday 23:00; 2026-09-06 00:00 jumps to
        // 01:00, so Sunday 00:30 does not exist.
        let santiago = "America/Santiago";
        runs(
            "30 23 * * sat",
            santiago,
            datetime!(2026-04-03 00:00 UTC),
            &[
                datetime!(2026-04-05 02:30 UTC),
                datetime!(2026-04-12 03:30 UTC),
            ],
        );
        runs(
            "30 0 * * sun",
            santiago,
            datetime!(2026-09-04 00:00 UTC),
            &[
                datetime!(2026-09-06 04:00 UTC),
                datetime!(2026-09-13 03:30 UTC),
            ],
        );
    }

    /// Vixie cron's minute loop, simulated: each real minute from `start` (outside any
    /// change of the clock), compare the wall clock with the latest one shown. Forward by
    /// one minute: run what matches. Jumped forward: what repeats through the day runs if
    /// the new time matches, a fixed-time expression also if a skipped time matched. Gone
    /// back: only what repeats through the day runs, until the clock catches up.
    fn simulate(
        c: &Cron,
        zone: &TimeZone,
        start: OffsetDateTime,
        minutes: i64,
    ) -> Vec<OffsetDateTime> {
        let wall_at = |t: OffsetDateTime| zone.to_datetime(to_timestamp(t).unwrap());
        let matches = |wall: DateTime| {
            let d = wall.date();
            let day = c.days.has(d.day());
            let weekday = c.weekdays.has(d.weekday().to_sunday_zero_offset());
            let days = if c.days_star || c.weekdays_star {
                day && weekday
            } else {
                day || weekday
            };
            wall.second() == 0
                && c.minutes.has(wall.minute())
                && c.hours.has(wall.hour())
                && c.months.has(d.month())
                && days
        };
        let mut shown = wall_at(start);
        let mut out = Vec::new();
        for i in 1..=minutes {
            let t = start + time::Duration::minutes(i);
            let wall = wall_at(t);
            let run = if wall > shown {
                let mut skipped = false;
                let mut w = shown.checked_add(MINUTE).unwrap();
                while w < wall {
                    skipped |= matches(w);
                    w = w.checked_add(MINUTE).unwrap();
                }
                matches(wall) || (!c.wildcard && skipped)
            } else {
                c.wildcard && matches(wall)
            };
            shown = shown.max(wall);
            if run {
                out.push(t);
            }
        }
        out
    }

    #[test]
    fn agrees_with_a_minute_by_minute_scan_around_clock_changes() {
        let exprs = [
            "30 1 * * *",
            "30 2 * * *",
            "0 3 * * *",
            "45 1 * * *",
            "15 2 * * *",
            "0,30 2-3 * * *",
            "0-59/7 0-3 * * *",
            "59 23 * * *",
            "30 23 * * sat",
            "30 0 * * sun",
            "0 9-17 * * mon-fri",
            "15 0 1,5 * *",
            "@daily",
            "@hourly",
            "*/15 * * * *",
            "30 * * * *",
            "*/20 1-2 * * *",
            "* 2 * * *",
            "0 */2 * * *",
        ];
        let zones = [
            "America/New_York",
            "Europe/Berlin",
            "Australia/Lord_Howe",
            "America/Santiago",
            "UTC",
        ];
        let mut compared = 0;
        for name in zones {
            let zone = tz(name);
            let year = Timestamp::from_second(1_767_225_600).unwrap(); // 2026-01-01
            let mut changes: Vec<OffsetDateTime> = zone
                .following(year)
                .take(2)
                .map(|t| to_offset_date_time(t.timestamp()).unwrap())
                .collect();
            if changes.is_empty() {
                changes.push(datetime!(2026-06-01 00:00 UTC));
            }
            for change in changes {
                let start = change - time::Duration::days(2);
                let end = change + time::Duration::days(2);
                for expr in exprs {
                    let c = cron(expr);
                    let expected = simulate(&c, &zone, start, 4 * 24 * 60);
                    let context = format!("{expr} in {name} around {change}");
                    // Runs one after another, forwards and backwards.
                    let mut forward = Vec::new();
                    let mut at = start;
                    while let Some(t) = c.next_after(at, &zone).filter(|t| *t <= end) {
                        forward.push(t);
                        at = t;
                    }
                    assert_eq!(forward, expected, "{context}: forwards");
                    let mut backward = Vec::new();
                    let mut at = end;
                    while let Some(t) = c.prev_at_or_before(at, &zone).filter(|t| *t > start) {
                        backward.push(t);
                        at = t - time::Duration::nanoseconds(1);
                    }
                    backward.reverse();
                    assert_eq!(backward, expected, "{context}: backwards");
                    // And asked from anywhere, in the repeated hour too (a day either side).
                    let mut probe = change - time::Duration::days(1) + time::Duration::seconds(13);
                    while probe < change + time::Duration::days(1) {
                        let after = expected.iter().find(|t| **t > probe).copied();
                        let found = c.next_after(probe, &zone);
                        match after {
                            Some(_) => assert_eq!(found, after, "{context}: next after {probe}"),
                            None => assert!(
                                found.is_none_or(|f| f > end),
                                "{context}: next after {probe}"
                            ),
                        }
                        let before = expected.iter().rev().find(|t| **t <= probe).copied();
                        let found = c.prev_at_or_before(probe, &zone);
                        match before {
                            Some(_) => assert_eq!(found, before, "{context}: prev at {probe}"),
                            None => assert!(
                                found.is_none_or(|f| f <= start),
                                "{context}: prev at {probe}"
                            ),
                        }
                        compared += 1;
                        probe += time::Duration::seconds(7 * 60 + 13);
                    }
                }
            }
        }
        assert!(compared > 20_000, "only {compared} probes");
    }
}
