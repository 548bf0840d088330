//! Named time windows (`time_intervals:` in rule files) for routes' `active_during` and
//! `muted_during`. Written and evaluated as Alertmanager's `time_intervals`, so its
//! configs carry over: a window is the union of its periods; a period matches when every
//! field it gives matches the instant's wall-clock time in its `location` (UTC when left
//! out). Besides "is this instant inside", a window answers "when does that next change",
//! so a mute that ends can wake a timer exactly then.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};
use time::OffsetDateTime;

use crate::diag::{Diagnostic, Diagnostics, closest};

/// How far [`TimeInterval::next_change`] looks: past a year, so yearly windows are found.
const HORIZON_DAYS: i64 = 400;

/// [`TimeInterval::next_change`] scans this many days at a time: a change soon costs little.
const CHUNK_DAYS: i64 = 8;

/// Alertmanager's weekday numbers: the index (0 is Sunday).
const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

/// Month names; the index plus one is the month's number.
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

// ---- as written --------------------------------------------------------------------------

/// One entry of a rule file's `time_intervals:`: a name and the periods it is the union of.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeInterval {
    name: Spanned<String>,
    /// Optional as in Alertmanager: no periods is a window that never contains anything.
    #[serde(default)]
    time_intervals: Vec<RawPeriod>,
}

/// One period: every field given must match; a field left out (or null) matches anything.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeriod {
    times: Option<Spanned<Vec<RawTimeRange>>>,
    weekdays: Option<Spanned<Vec<Spanned<String>>>>,
    days_of_month: Option<Spanned<Vec<Spanned<String>>>>,
    months: Option<Spanned<Vec<Spanned<String>>>>,
    years: Option<Spanned<Vec<Spanned<String>>>>,
    location: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeRange {
    start_time: Spanned<String>,
    end_time: Spanned<String>,
}

// ---- compiled ----------------------------------------------------------------------------

/// Inclusive ranges (`first..=last`); `None` where the field was left out and matches all.
type Ranges = Option<Vec<(i32, i32)>>;

fn in_ranges(ranges: &Ranges, value: i32) -> bool {
    ranges.as_ref().is_none_or(|rs| {
        rs.iter()
            .any(|&(first, last)| first <= value && value <= last)
    })
}

/// One compiled period.
#[derive(Debug, Clone, PartialEq)]
struct Period {
    /// `[start, end)` in minutes of the local day; the end may be 1440 (24:00).
    times: Option<Vec<(i32, i32)>>,
    /// 0 (Sunday) to 6 (Saturday).
    weekdays: Ranges,
    /// 1..=31, or -31..=-1 counting from the month's end (-1 is its last day).
    days_of_month: Ranges,
    months: Ranges,
    years: Ranges,
    zone: TimeZone,
}

impl Period {
    fn contains(&self, at: Timestamp) -> bool {
        let local = self.zone.to_datetime(at);
        self.matches_date(local.date()) && self.matches_time(local.time())
    }

    fn matches_time(&self, t: Time) -> bool {
        let minute = i32::from(t.hour()) * 60 + i32::from(t.minute());
        self.times.as_ref().is_none_or(|ts| {
            ts.iter()
                .any(|&(start, end)| start <= minute && minute < end)
        })
    }

    fn matches_date(&self, d: Date) -> bool {
        in_ranges(
            &self.weekdays,
            i32::from(d.weekday().to_sunday_zero_offset()),
        ) && self.matches_day_of_month(d)
            && in_ranges(&self.months, i32::from(d.month()))
            && in_ranges(&self.years, i32::from(d.year()))
    }

    /// As Alertmanager: negative days count from this month's end (resolved per month), so
    /// `30:31` matches none of February and `1:31` all of it.
    fn matches_day_of_month(&self, d: Date) -> bool {
        let Some(ranges) = &self.days_of_month else {
            return true;
        };
        let days = i32::from(d.days_in_month());
        let resolve = |n: i32| if n < 0 { days + n + 1 } else { n };
        let day = i32::from(d.day());
        ranges.iter().any(|&(first, last)| {
            let (first, last) = (resolve(first), resolve(last));
            first <= day && day <= last
        })
    }

    /// Instants in `(lo, hi]` where this period may start or stop containing: the zone's
    /// offset changes (the wall clock jumps, perhaps over a boundary that then has no instant
    /// of its own), local midnights, and the starts and ends of `times` on matching days.
    /// Between two of them the period's answer cannot change.
    fn changes(&self, lo: Timestamp, hi: Timestamp, out: &mut Vec<Timestamp>) {
        out.extend(
            self.zone
                .following(lo)
                .map(|t| t.timestamp())
                .take_while(|t| *t <= hi),
        );
        // A fold sets the clock back, so a boundary of the day before can come after `lo`.
        let first = self.zone.to_datetime(lo).date();
        let last = self.zone.to_datetime(hi).date();
        let mut day = first.yesterday().unwrap_or(first);
        let last = last.tomorrow().unwrap_or(last);
        let within = |t: &Timestamp| lo < *t && *t <= hi;
        while day <= last {
            let midnight = day.to_datetime(Time::midnight());
            out.extend(instants(&self.zone, midnight).filter(within));
            // On a day the date fields reject, the period is out all day: only midnights count.
            if let Some(times) = &self.times
                && self.matches_date(day)
            {
                for &(start, end) in times {
                    for minute in [start, end] {
                        if let Ok(dt) =
                            midnight.checked_add(SignedDuration::from_mins(minute.into()))
                        {
                            out.extend(instants(&self.zone, dt).filter(within));
                        }
                    }
                }
            }
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break,
            }
        }
    }
}

/// The instants at which the wall clock in `zone` shows `dt`: one, two in a fold (the hour
/// shown twice when clocks go back), none in a gap (skipped when clocks go forward).
fn instants(zone: &TimeZone, dt: DateTime) -> impl Iterator<Item = Timestamp> {
    let offsets = match zone.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => [Some(offset), None],
        AmbiguousOffset::Fold { before, after } => [Some(before), Some(after)],
        AmbiguousOffset::Gap { .. } => [None, None],
    };
    offsets
        .into_iter()
        .flatten()
        .filter_map(move |offset| offset.to_timestamp(dt).ok())
}

use crate::tz::{to_offset_date_time, to_timestamp};

/// A compiled window: the union of its periods. The default contains nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimeInterval {
    periods: Vec<Period>,
}

impl TimeInterval {
    /// Whether `at` is inside the window.
    pub fn contains(&self, at: OffsetDateTime) -> bool {
        to_timestamp(at).is_some_and(|at| self.contains_timestamp(at))
    }

    fn contains_timestamp(&self, at: Timestamp) -> bool {
        self.periods.iter().any(|p| p.contains(at))
    }

    /// The first instant after `at` where [`contains`](Self::contains) gives the other
    /// answer; `None` when it stays the same for the next 400 days (ask again later).
    pub fn next_change(&self, at: OffsetDateTime) -> Option<OffsetDateTime> {
        let start = to_timestamp(at)?;
        if self.periods.is_empty() {
            return None;
        }
        let inside = self.contains_timestamp(start);
        let horizon = start
            .checked_add(SignedDuration::from_hours(24 * HORIZON_DAYS))
            .unwrap_or(Timestamp::MAX);
        let chunk = SignedDuration::from_hours(24 * CHUNK_DAYS);
        let mut lo = start;
        let mut candidates = Vec::new();
        while lo < horizon {
            let hi = lo.checked_add(chunk).map_or(horizon, |hi| hi.min(horizon));
            candidates.clear();
            for period in &self.periods {
                period.changes(lo, hi, &mut candidates);
            }
            candidates.sort_unstable();
            candidates.dedup();
            // Every period's answer is constant between candidates, so the first candidate
            // with the other answer is where the window changes.
            if let Some(&change) = candidates
                .iter()
                .find(|&&t| self.contains_timestamp(t) != inside)
            {
                return to_offset_date_time(change);
            }
            lo = hi;
        }
        None
    }
}

/// Where a name was defined, to point a duplicate at the first.
#[derive(Debug, Clone)]
struct Defined {
    interval: TimeInterval,
    file: PathBuf,
    line: u32,
    col: u32,
}

/// Every named window of every rule file.
#[derive(Debug, Clone, Default)]
pub struct TimeIntervals {
    by_name: BTreeMap<String, Defined>,
}

impl TimeIntervals {
    /// The windows of one file; see [`add`](Self::add).
    pub fn compile(
        file: &Path,
        raw: Vec<Spanned<RawTimeInterval>>,
        problems: &mut Diagnostics,
    ) -> TimeIntervals {
        let mut intervals = TimeIntervals::default();
        intervals.add(file, raw, problems);
        intervals
    }

    /// Adds the windows of one more file. Reports every problem at its file:line:col; a
    /// name defined before (in this file or an earlier one) is an error at the second
    /// place, and the first definition stays.
    pub fn add(
        &mut self,
        file: &Path,
        raw: Vec<Spanned<RawTimeInterval>>,
        problems: &mut Diagnostics,
    ) {
        for entry in raw {
            let RawTimeInterval {
                name,
                time_intervals,
            } = entry.value;
            let here = |message: String| {
                let loc = &name.referenced;
                Diagnostic::new(file, loc.line() as u32, loc.column() as u32, message)
            };
            if name.value.is_empty() {
                problems.push(here("time interval name is empty: name the window; routes refer to it in `active_during` and `muted_during`".to_owned()));
            }
            let duplicate = self.by_name.get(&name.value);
            if let Some(first) = duplicate {
                problems.push(here(format!(
                    "time interval `{}` is defined twice: first at {}:{}:{}; rename one",
                    name.value,
                    first.file.display(),
                    first.line,
                    first.col
                )));
            }
            let mut report = Reporter {
                file,
                name: &name.value,
                problems: &mut *problems,
            };
            // A duplicate's periods are still checked, so all its problems show at once.
            let periods = time_intervals
                .into_iter()
                .filter_map(|p| compile_period(p, &mut report))
                .collect();
            if duplicate.is_some() {
                continue;
            }
            self.by_name.insert(
                name.value,
                Defined {
                    interval: TimeInterval { periods },
                    file: file.to_path_buf(),
                    line: name.referenced.line() as u32,
                    col: name.referenced.column() as u32,
                },
            );
        }
    }

    /// The window named `name`.
    pub fn get(&self, name: &str) -> Option<&TimeInterval> {
        self.by_name.get(name).map(|d| &d.interval)
    }

    /// Whether the window `name` contains `at`; `None` when no window has that name.
    pub fn contains(&self, name: &str, at: OffsetDateTime) -> Option<bool> {
        self.get(name).map(|i| i.contains(at))
    }

    /// One window that contains what any of `names` contains (a route's list of names);
    /// `Err` with the first name that is not defined.
    pub fn union<'n>(
        &self,
        names: impl IntoIterator<Item = &'n str>,
    ) -> Result<TimeInterval, &'n str> {
        let mut periods = Vec::new();
        for name in names {
            let interval = self.get(name).ok_or(name)?;
            periods.extend(interval.periods.iter().cloned());
        }
        Ok(TimeInterval { periods })
    }

    /// The defined names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

// ---- compiling ---------------------------------------------------------------------------

/// Reports problems of one named window, each prefixed with the window's name.
struct Reporter<'a> {
    file: &'a Path,
    name: &'a str,
    problems: &'a mut Diagnostics,
}

impl Reporter<'_> {
    fn push(&mut self, loc: &Location, message: impl AsRef<str>) {
        self.problems.push(Diagnostic::new(
            self.file,
            loc.line() as u32,
            loc.column() as u32,
            format!("time interval `{}`: {}", self.name, message.as_ref()),
        ));
    }
}

/// The compiled period, or `None` after reporting what is wrong with it.
fn compile_period(raw: RawPeriod, report: &mut Reporter) -> Option<Period> {
    let times = times(report, raw.times);
    let weekdays = ranges(report, "weekdays", raw.weekdays, weekday_range);
    let days_of_month = ranges(report, "days_of_month", raw.days_of_month, day_range);
    let months = ranges(report, "months", raw.months, month_range);
    let years = ranges(report, "years", raw.years, year_range);
    let zone = match raw.location {
        None => Ok(TimeZone::UTC),
        Some(location) => zone(&location.value).map_err(|message| {
            report.push(&location.referenced, format!("location {message}"));
        }),
    };
    Some(Period {
        times: times.ok()?,
        weekdays: weekdays.ok()?,
        days_of_month: days_of_month.ok()?,
        months: months.ok()?,
        years: years.ok()?,
        zone: zone.ok()?,
    })
}

/// An empty list matches nothing in Alertmanager, which is never what was meant.
fn not_empty<T>(report: &mut Reporter, field: &str, list: &Spanned<Vec<T>>) -> Result<(), ()> {
    if list.value.is_empty() {
        report.push(
            &list.referenced,
            format!("{field} is empty, which matches nothing: list values, or leave `{field}` out to match all"),
        );
        return Err(());
    }
    Ok(())
}

/// The `times` list; `Err` after reporting each bad range.
fn times(
    report: &mut Reporter,
    list: Option<Spanned<Vec<RawTimeRange>>>,
) -> Result<Option<Vec<(i32, i32)>>, ()> {
    let Some(list) = list else {
        return Ok(None);
    };
    not_empty(report, "times", &list)?;
    let ranges: Vec<_> = list
        .value
        .iter()
        .filter_map(|r| time_range(report, r))
        .collect();
    if ranges.len() == list.value.len() {
        Ok(Some(ranges))
    } else {
        Err(())
    }
}

/// One field's list of ranges; `Err` after reporting each bad one.
fn ranges(
    report: &mut Reporter,
    field: &str,
    list: Option<Spanned<Vec<Spanned<String>>>>,
    parse: fn(&str) -> Result<(i32, i32), String>,
) -> Result<Ranges, ()> {
    let Some(list) = list else {
        return Ok(None);
    };
    not_empty(report, field, &list)?;
    let mut out = Vec::with_capacity(list.value.len());
    for item in &list.value {
        match parse(&item.value) {
            Ok(range) => out.push(range),
            Err(message) => report.push(&item.referenced, format!("{field}: {message}")),
        }
    }
    if out.len() == list.value.len() {
        Ok(Some(out))
    } else {
        Err(())
    }
}

/// `one` or `first:last` (inclusive), each end read by `member`; case-insensitive, as in
/// Alertmanager.
fn range(text: &str, member: impl Fn(&str) -> Result<i32, String>) -> Result<(i32, i32), String> {
    let lower = text.trim().to_ascii_lowercase();
    let parts: Vec<&str> = lower.split(':').map(str::trim).collect();
    match parts[..] {
        [one] => member(one).map(|v| (v, v)),
        [first, last] => Ok((member(first)?, member(last)?)),
        _ => Err(format!(
            "`{text}` is not a range: write one value or `first:last`"
        )),
    }
}

fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, candidates)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

fn weekday_range(text: &str) -> Result<(i32, i32), String> {
    let (first, last) = range(text, |s| {
        WEEKDAYS
            .iter()
            .position(|d| *d == s)
            .map(|i| i as i32)
            .ok_or_else(|| {
                format!(
                    "`{s}` is not a weekday: write sunday, monday, … saturday, or a range such as `monday:friday`{}",
                    did_you_mean(s, WEEKDAYS)
                )
            })
    })?;
    if first > last {
        let (f, l) = (WEEKDAYS[first as usize], WEEKDAYS[last as usize]);
        return Err(format!(
            "`{text}` runs backwards (weeks run sunday to saturday): write `{f}:saturday` and `sunday:{l}`"
        ));
    }
    Ok((first, last))
}

fn day_range(text: &str) -> Result<(i32, i32), String> {
    let (first, last) = range(text, |s| match s.parse::<i32>() {
        Ok(n) if n != 0 && (-31..=31).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{s}` is not a day of the month: write 1 to 31, or -1 to -31 to count from the month's end (-1 is the last day)"
        )),
    })?;
    if first < 0 && last > 0 {
        return Err(format!(
            "`{text}` starts counting from the month's end but ends counting from its start: end it at a negative day too, e.g. `{first}:-1`"
        ));
    }
    // Empty in every month length (28 to 31 days): its first day is after its last.
    let empty = (28..=31).all(|days: i32| {
        let resolve = |n: i32| if n < 0 { days + n + 1 } else { n };
        resolve(first) > resolve(last)
    });
    if empty {
        return Err(format!(
            "`{text}` matches no day in any month: write the earlier day first"
        ));
    }
    Ok((first, last))
}

fn month_range(text: &str) -> Result<(i32, i32), String> {
    let (first, last) = range(text, |s| {
        if let Some(i) = MONTHS.iter().position(|m| *m == s) {
            return Ok(i as i32 + 1);
        }
        match s.parse::<i32>() {
            Ok(n) if (1..=12).contains(&n) => Ok(n),
            _ => Err(format!(
                "`{s}` is not a month: write january … december or 1 to 12{}",
                did_you_mean(s, MONTHS)
            )),
        }
    })?;
    if first > last {
        let (f, l) = (MONTHS[first as usize - 1], MONTHS[last as usize - 1]);
        return Err(format!(
            "`{text}` runs backwards (years run january to december): write `{f}:december` and `january:{l}`"
        ));
    }
    Ok((first, last))
}

fn year_range(text: &str) -> Result<(i32, i32), String> {
    let (first, last) = range(text, |s| match s.parse::<i32>() {
        Ok(n) if (1..=9999).contains(&n) => Ok(n),
        _ => Err(format!("`{s}` is not a year: write one such as 2026")),
    })?;
    if first > last {
        return Err(format!(
            "`{text}` runs backwards: write the earlier year first, `{last}:{first}`"
        ));
    }
    Ok((first, last))
}

/// `HH:MM` from 00:00 to 24:00, as minutes of the day; two-digit hours as Alertmanager.
fn minute_of_day(text: &str) -> Option<i32> {
    let (hours, minutes) = text.split_once(':')?;
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(hours) || !two_digits(minutes) {
        return None;
    }
    let (h, m): (i32, i32) = (hours.parse().ok()?, minutes.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn time_range(report: &mut Reporter, raw: &RawTimeRange) -> Option<(i32, i32)> {
    let mut read = |field: &str, text: &Spanned<String>| {
        let minute = minute_of_day(&text.value);
        if minute.is_none() {
            // `9:30` is close: say how to write it.
            let padded = format!("0{}", text.value);
            let hint = if minute_of_day(&padded).is_some() {
                format!(" (`{padded}`)")
            } else {
                String::new()
            };
            report.push(
                &text.referenced,
                format!(
                    "{field} `{}` is not a time of day: write HH:MM from 00:00 to 24:00{hint}",
                    text.value
                ),
            );
        }
        minute
    };
    let start = read("start_time", &raw.start_time);
    let end = read("end_time", &raw.end_time);
    let (start, end) = (start?, end?);
    if start >= end {
        let (s, e) = (&raw.start_time.value, &raw.end_time.value);
        let fix = if end == 0 {
            "write `24:00` for the end of the day".to_owned()
        } else if start == end {
            "the range is empty".to_owned()
        } else {
            format!("a range cannot cross midnight; write two, `{s}`–`24:00` and `00:00`–`{e}`")
        };
        report.push(
            &raw.start_time.referenced,
            format!("start_time `{s}` is not before end_time `{e}`: {fix}"),
        );
        return None;
    }
    Some((start, end))
}

/// The zone named `name` (see [`crate::tz::zone`]), for a window's `location`.
fn zone(name: &str) -> Result<TimeZone, String> {
    crate::tz::zone(name, ", or leave `location` out for UTC")
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct File {
        time_intervals: Vec<Spanned<RawTimeInterval>>,
    }

    const FILE: &str = "rules/times.yaml";

    fn compile(yaml: &str) -> (TimeIntervals, Diagnostics) {
        let file: File = serde_saphyr::from_str(yaml).unwrap();
        let mut problems = Diagnostics::default();
        let intervals = TimeIntervals::compile(Path::new(FILE), file.time_intervals, &mut problems);
        (intervals, problems)
    }

    /// The one window `yaml` defines, which must compile cleanly.
    fn window(yaml: &str) -> TimeInterval {
        let (intervals, problems) = compile(yaml);
        assert!(problems.is_empty(), "{problems}");
        let names: Vec<&str> = intervals.names().collect();
        assert_eq!(names.len(), 1, "{names:?}");
        intervals.get(names[0]).unwrap().clone()
    }

    /// The problems `yaml` has, one line each.
    fn errors(yaml: &str) -> Vec<String> {
        let (_, problems) = compile(yaml);
        problems.0.iter().map(|d| d.to_string()).collect()
    }

    fn one_error(yaml: &str) -> String {
        let errors = errors(yaml);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        errors[0].clone()
    }

    /// The change `next_change` finds by scanning minute by minute, for checking.
    fn scan_minutes(w: &TimeInterval, at: OffsetDateTime, days: i64) -> Option<OffsetDateTime> {
        let inside = w.contains(at);
        let first = at.unix_timestamp().div_euclid(60) * 60 + 60;
        (0..days * 24 * 60)
            .map(|i| OffsetDateTime::from_unix_timestamp(first + i * 60).unwrap())
            .find(|t| w.contains(*t) != inside)
    }

    #[test]
    fn weekdays_with_ranges_and_any_case() {
        let w = window(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - weekdays: ['Monday:wednesday', 'SATURDAY']\n",
        );
        // 2026-03-02 is a Monday.
        let expected = [true, true, true, false, false, true, false];
        for (i, want) in expected.into_iter().enumerate() {
            let at = datetime!(2026-03-02 12:00 UTC) + time::Duration::days(i as i64);
            assert_eq!(w.contains(at), want, "{at}");
        }
    }

    #[test]
    fn days_of_month_count_from_either_end() {
        let w = window(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - days_of_month: ['-1', '1:3']\n",
        );
        assert!(
            w.contains(datetime!(2026-02-28 12:00 UTC)),
            "last of February"
        );
        assert!(!w.contains(datetime!(2026-01-30 12:00 UTC)));
        assert!(w.contains(datetime!(2026-01-31 00:00 UTC)));
        assert!(w.contains(datetime!(2028-02-29 23:59 UTC)), "leap year");
        assert!(!w.contains(datetime!(2028-02-28 23:59 UTC)));
        assert!(w.contains(datetime!(2026-04-03 23:59 UTC)));
        assert!(!w.contains(datetime!(2026-04-04 00:00 UTC)));

        // Mixed signs: the 25th to the second-to-last day.
        let w = window(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - days_of_month: ['25:-2']\n",
        );
        assert!(!w.contains(datetime!(2026-01-24 12:00 UTC)));
        assert!(w.contains(datetime!(2026-01-30 12:00 UTC)));
        assert!(!w.contains(datetime!(2026-01-31 12:00 UTC)));
        assert!(w.contains(datetime!(2026-02-27 12:00 UTC)));
        assert!(!w.contains(datetime!(2026-02-28 12:00 UTC)));

        // Past the end of a short month: none of it; the last day stops at the month's end.
        let w = window(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - days_of_month: ['30:31']\n",
        );
        assert!(!w.contains(datetime!(2026-02-28 12:00 UTC)));
        assert!(!w.contains(datetime!(2026-03-01 12:00 UTC)));
        assert!(w.contains(datetime!(2026-04-30 12:00 UTC)));
        assert!(w.contains(datetime!(2026-03-31 12:00 UTC)));
    }

    #[test]
    fn months_by_name_or_number_and_years() {
        let w = window(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - months: ['january:March', '12']\n        years: ['2026:2027', 2030]\n",
        );
        assert!(w.contains(datetime!(2026-01-01 00:00 UTC)));
        assert!(w.contains(datetime!(2026-03-31 23:59 UTC)));
        assert!(!w.contains(datetime!(2026-04-01 00:00 UTC)));
        assert!(w.contains(datetime!(2027-12-15 00:00 UTC)));
        assert!(
            !w.contains(datetime!(2028-12-15 00:00 UTC)),
            "year not listed"
        );
        assert!(w.contains(datetime!(2030-02-01 00:00 UTC)));
        assert!(!w.contains(datetime!(2025-12-31 23:59 UTC)));
    }

    #[test]
    fn every_field_must_match_and_periods_unite() {
        let w = window(
            r#"
time_intervals:
  - name: market-closed
    time_intervals:
      - weekdays: ['saturday', 'sunday']
        location: America/New_York
      - weekdays: ['monday:friday']
        times:
          - start_time: "00:00"
            end_time: "09:30"
          - start_time: "16:00"
            end_time: "24:00"
        location: America/New_York
"#,
        );
        // Tuesday 2026-06-02; New York is UTC-4 in June.
        assert!(w.contains(datetime!(2026-06-02 13:29 UTC)), "09:29 local");
        assert!(
            !w.contains(datetime!(2026-06-02 13:30 UTC)),
            "09:30 local: open"
        );
        assert!(
            !w.contains(datetime!(2026-06-02 19:59:59 UTC)),
            "15:59:59 local"
        );
        assert!(w.contains(datetime!(2026-06-02 20:00 UTC)), "16:00 local");
        assert!(
            w.contains(datetime!(2026-06-03 03:59 UTC)),
            "23:59 local, end 24:00"
        );
        // Saturday all day, local: Friday 23:00 UTC is still Friday 19:00 in New York.
        assert!(
            w.contains(datetime!(2026-06-06 04:00 UTC)),
            "Saturday 00:00 local"
        );
        assert!(
            w.contains(datetime!(2026-06-05 23:00 UTC)),
            "Friday 19:00 local"
        );
        assert!(w.contains(datetime!(2026-06-06 15:00 UTC)), "Saturday noon");
        assert!(
            !w.contains(datetime!(2026-06-08 14:00 UTC)),
            "Monday 10:00 local"
        );
        assert_eq!(
            w.next_change(datetime!(2026-06-05 19:00 UTC)),
            Some(datetime!(2026-06-05 20:00 UTC)),
            "Friday close"
        );
        assert_eq!(
            w.next_change(datetime!(2026-06-05 20:00 UTC)),
            Some(datetime!(2026-06-08 13:30 UTC)),
            "closed through the weekend until Monday's open"
        );
    }

    #[test]
    fn utc_is_the_default_and_24_00_ends_the_day() {
        let w = window(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - times:\n          - start_time: '22:00'\n            end_time: '24:00'\n",
        );
        assert!(!w.contains(datetime!(2026-07-01 21:59:59 UTC)));
        assert!(w.contains(datetime!(2026-07-01 22:00 UTC)));
        assert!(w.contains(datetime!(2026-07-01 23:59:59.999 UTC)));
        assert!(!w.contains(datetime!(2026-07-02 00:00 UTC)));
        // The instant's own offset does not matter, only the instant.
        assert!(w.contains(datetime!(2026-07-02 01:00 +03:00)));
        assert_eq!(
            w.next_change(datetime!(2026-07-01 12:00 UTC)),
            Some(datetime!(2026-07-01 22:00 UTC))
        );
        assert_eq!(
            w.next_change(datetime!(2026-07-01 22:00 UTC)),
            Some(datetime!(2026-07-02 00:00 UTC))
        );
        // A window that always or never holds never changes.
        assert_eq!(
            window("time_intervals:\n  - name: w\n    time_intervals:\n      - {}\n")
                .next_change(datetime!(2026-07-01 12:00 UTC)),
            None
        );
        let never = window("time_intervals:\n  - name: w\n");
        assert!(!never.contains(datetime!(2026-07-01 12:00 UTC)));
        assert_eq!(never.next_change(datetime!(2026-07-01 12:00 UTC)), None);
    }

    #[test]
    fn location_utc_is_the_default_and_zone_names_are_looked_up() {
        let body = "time_intervals:\n  - name: w\n    time_intervals:\n      - times: [{start_time: '09:00', end_time: '17:00'}]\n";
        let utc = window(&format!("{body}        location: UTC\n"));
        assert_eq!(utc, window(body));
        let tokyo = window(&format!("{body}        location: Asia/Tokyo\n"));
        assert_ne!(tokyo, utc);
        assert!(
            tokyo.contains(datetime!(2026-07-01 00:00 UTC)),
            "09:00 in Tokyo"
        );
        assert!(!utc.contains(datetime!(2026-07-01 00:00 UTC)));
    }

    #[test]
    fn new_york_spring_forward() {
        // 2026-03-08: at 02:00 EST (07:00 UTC) clocks go to 03:00 EDT; 02:00–03:00 never shows.
        let ends_in_gap = window(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - times: [{start_time: '01:00', end_time: '02:30'}]\n        location: America/New_York\n",
        );
        assert!(
            ends_in_gap.contains(datetime!(2026-03-08 06:59:59 UTC)),
            "01:59:59 EST"
        );
        assert!(
            !ends_in_gap.contains(datetime!(2026-03-08 07:00 UTC)),
            "03:00 EDT"
        );
        assert_eq!(
            ends_in_gap.next_change(datetime!(2026-03-08 06:00 UTC)),
            Some(datetime!(2026-03-08 07:00 UTC)),
            "the window ends when the clock jumps past 02:30"
        );
        assert_eq!(
            ends_in_gap.next_change(datetime!(2026-03-08 00:00 UTC)),
            Some(datetime!(2026-03-08 06:00 UTC)),
            "01:00 EST"
        );
        // The next day, 01:00 EDT is 05:00 UTC.
        assert_eq!(
            ends_in_gap.next_change(datetime!(2026-03-08 07:00 UTC)),
            Some(datetime!(2026-03-09 05:00 UTC))
        );

        let starts_in_gap = window(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - times: [{start_time: '02:30', end_time: '04:00'}]\n        location: America/New_York\n",
        );
        assert!(!starts_in_gap.contains(datetime!(2026-03-08 06:59 UTC)));
        assert!(
            starts_in_gap.contains(datetime!(2026-03-08 07:00 UTC)),
            "03:00 EDT"
        );
        assert_eq!(
            starts_in_gap.next_change(datetime!(2026-03-08 05:00 UTC)),
            Some(datetime!(2026-03-08 07:00 UTC))
        );
        assert_eq!(
            starts_in_gap.next_change(datetime!(2026-03-08 07:00 UTC)),
            Some(datetime!(2026-03-08 08:00 UTC)),
            "04:00 EDT"
        );
    }

    #[test]
    fn new_york_fall_back() {
        // 2026-11-01: at 02:00 EDT (06:00 UTC) clocks go back to 01:00 EST; 01:00–02:00 shows
        // twice, and both are inside, as Alertmanager compares wall-clock time.
        let w = window(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - times: [{start_time: '01:00', end_time: '02:00'}]\n        location: America/New_York\n",
        );
        assert!(!w.contains(datetime!(2026-11-01 04:59 UTC)), "00:59 EDT");
        assert!(w.contains(datetime!(2026-11-01 05:30 UTC)), "01:30 EDT");
        assert!(w.contains(datetime!(2026-11-01 06:30 UTC)), "01:30 EST");
        assert!(!w.contains(datetime!(2026-11-01 07:00 UTC)), "02:00 EST");
        assert_eq!(
            w.next_change(datetime!(2026-11-01 04:00 UTC)),
            Some(datetime!(2026-11-01 05:00 UTC))
        );
        assert_eq!(
            w.next_change(datetime!(2026-11-01 05:00 UTC)),
            Some(datetime!(2026-11-01 07:00 UTC)),
            "two hours inside, not one"
        );

        // A window that ends inside the repeated hour is left and entered again.
        let w = window(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - times: [{start_time: '00:00', end_time: '01:30'}]\n        location: America/New_York\n",
        );
        let at = datetime!(2026-11-01 04:00 UTC);
        assert_eq!(
            w.next_change(at),
            Some(datetime!(2026-11-01 05:30 UTC)),
            "01:30 EDT"
        );
        let at = datetime!(2026-11-01 05:30 UTC);
        assert_eq!(
            w.next_change(at),
            Some(datetime!(2026-11-01 06:00 UTC)),
            "back to 01:00 EST"
        );
        let at = datetime!(2026-11-01 06:00 UTC);
        assert_eq!(
            w.next_change(at),
            Some(datetime!(2026-11-01 06:30 UTC)),
            "01:30 EST"
        );
    }

    #[test]
    fn berlin_both_changes() {
        // 2026-03-29 02:00 CET → 03:00 CEST at 01:00 UTC; 2026-10-25 03:00 CEST → 02:00 CET
        // at 01:00 UTC.
        let w = window(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - times: [{start_time: '02:00', end_time: '03:00'}]\n        weekdays: [sunday]\n        location: Europe/Berlin\n",
        );
        // The hour does not exist in spring: never inside that Sunday.
        assert_eq!(
            w.next_change(datetime!(2026-03-28 12:00 UTC)),
            Some(datetime!(2026-04-05 00:00 UTC)),
            "next Sunday, 02:00 CEST"
        );
        // In autumn it shows twice... but only once as 02:xx: 02:00 CEST is 00:00 UTC,
        // then 03:00 CEST becomes 02:00 CET (01:00 UTC) until 03:00 CET (02:00 UTC).
        assert!(w.contains(datetime!(2026-10-25 00:30 UTC)), "02:30 CEST");
        assert!(w.contains(datetime!(2026-10-25 01:30 UTC)), "02:30 CET");
        assert!(!w.contains(datetime!(2026-10-25 02:00 UTC)), "03:00 CET");
        assert_eq!(
            w.next_change(datetime!(2026-10-24 12:00 UTC)),
            Some(datetime!(2026-10-25 00:00 UTC))
        );
        assert_eq!(
            w.next_change(datetime!(2026-10-25 00:00 UTC)),
            Some(datetime!(2026-10-25 02:00 UTC))
        );
    }

    #[test]
    fn next_change_agrees_with_a_minute_scan() {
        let windows = [
            "      - times: [{start_time: '01:00', end_time: '02:30'}, {start_time: '23:00', end_time: '24:00'}]\n        location: America/New_York\n",
            "      - weekdays: ['sunday']\n        times: [{start_time: '00:00', end_time: '03:00'}]\n        location: Europe/Berlin\n      - days_of_month: ['-1']\n        location: America/New_York\n",
            "      - days_of_month: ['1', '-1']\n        months: ['march', 'november']\n        location: Europe/Berlin\n",
            "      - times: [{start_time: '02:15', end_time: '02:45'}]\n        location: America/New_York\n      - times: [{start_time: '00:10', end_time: '00:20'}]\n",
        ];
        let starts = [
            datetime!(2026-03-07 10:17:31 UTC),
            datetime!(2026-03-08 06:30 UTC),
            datetime!(2026-03-28 22:00 UTC),
            datetime!(2026-10-24 23:59:59 UTC),
            datetime!(2026-10-31 20:00 UTC),
            datetime!(2026-11-01 05:45 UTC),
        ];
        let mut checked = 0;
        for body in windows {
            let w = window(&format!(
                "time_intervals:\n  - name: w\n    time_intervals:\n{body}"
            ));
            for start in starts {
                let mut at = start;
                // Follow a few changes in a row.
                for _ in 0..6 {
                    let found = w.next_change(at);
                    let Some(expected) = scan_minutes(&w, at, 3) else {
                        // No change within the scan: none within it from next_change either.
                        let later = found.is_none_or(|f| f > at + time::Duration::days(3));
                        assert!(later, "{body} from {at}: {found:?}");
                        break;
                    };
                    assert_eq!(found, Some(expected), "{body} from {at}");
                    checked += 1;
                    at = expected;
                }
            }
        }
        assert!(checked > 60, "only {checked} changes compared");
    }

    #[test]
    fn next_change_looks_a_day_either_side_when_the_clock_goes_back_over_midnight() {
        // Summer time ends at 00:30 on Sunday 2026-11-01 (04:30 UTC): the clock goes back to
        // 23:30 on Saturday, so Saturday's 23:40 comes after Sunday's 00:10.
        let zone = TimeZone::posix("XST5XDT,M3.2.0,M11.1.0/0:30").unwrap();
        let w = TimeInterval {
            periods: vec![Period {
                times: Some(vec![(23 * 60 + 40, 24 * 60)]),
                weekdays: Some(vec![(6, 6)]),
                days_of_month: None,
                months: None,
                years: None,
                zone,
            }],
        };
        let at = datetime!(2026-11-01 04:10 UTC);
        assert!(!w.contains(at), "Sunday 00:10 summer time");
        assert_eq!(w.next_change(at), Some(datetime!(2026-11-01 04:40 UTC)));
        assert_eq!(
            w.next_change(datetime!(2026-11-01 04:40 UTC)),
            Some(datetime!(2026-11-01 05:00 UTC)),
            "Sunday 00:00 again"
        );

        // And a chunk of the scan that ends in the repeated half hour (Saturday again) still
        // sees Sunday's boundaries before it: 00:00 summer time is 04:00 UTC.
        let sunday_first = TimeInterval {
            periods: vec![Period {
                times: Some(vec![(0, 20)]),
                weekdays: None,
                days_of_month: Some(vec![(1, 1)]),
                months: Some(vec![(11, 11)]),
                years: None,
                zone: w.periods[0].zone.clone(),
            }],
        };
        let chunk_ends_at = datetime!(2026-11-01 04:35 UTC);
        let at = chunk_ends_at - time::Duration::days(CHUNK_DAYS);
        assert_eq!(
            sunday_first.next_change(at),
            Some(datetime!(2026-11-01 04:00 UTC))
        );
    }

    #[test]
    fn next_change_finds_a_change_months_away_and_gives_up_after_the_horizon() {
        let w = window(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - months: ['december']\n        location: Europe/Berlin\n",
        );
        assert_eq!(
            w.next_change(datetime!(2026-01-15 00:00 UTC)),
            Some(datetime!(2026-11-30 23:00 UTC)),
            "December 1st, 00:00 CET"
        );
        let w =
            window("time_intervals:\n  - name: w\n    time_intervals:\n      - years: ['2031']\n");
        assert_eq!(w.next_change(datetime!(2026-01-15 00:00 UTC)), None);
        assert_eq!(
            w.next_change(datetime!(2030-03-01 00:00 UTC)),
            Some(datetime!(2031-01-01 00:00 UTC))
        );
    }

    #[test]
    fn lookups_by_name_and_unions() {
        let (intervals, problems) = compile(
            "time_intervals:\n  - name: mornings\n    time_intervals:\n      - times: [{start_time: '06:00', end_time: '09:00'}]\n  - name: evenings\n    time_intervals:\n      - times: [{start_time: '18:00', end_time: '21:00'}]\n",
        );
        assert!(problems.is_empty(), "{problems}");
        assert_eq!(
            intervals.names().collect::<Vec<_>>(),
            ["evenings", "mornings"]
        );
        let seven = datetime!(2026-05-05 07:00 UTC);
        assert_eq!(intervals.contains("mornings", seven), Some(true));
        assert_eq!(intervals.contains("evenings", seven), Some(false));
        assert_eq!(intervals.contains("nights", seven), None);
        let both = intervals.union(["mornings", "evenings"]).unwrap();
        assert!(both.contains(seven));
        assert!(both.contains(datetime!(2026-05-05 19:00 UTC)));
        assert!(!both.contains(datetime!(2026-05-05 12:00 UTC)));
        assert_eq!(
            both.next_change(datetime!(2026-05-05 12:00 UTC)),
            Some(datetime!(2026-05-05 18:00 UTC))
        );
        assert_eq!(intervals.union(["mornings", "nights"]), Err("nights"));
    }

    #[test]
    fn plain_numbers_and_times_are_read_as_written() {
        let w = window(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - days_of_month: [1, -1]\n        years: [2026]\n        times:\n          - start_time: 09:30\n            end_time: 10:00\n",
        );
        assert!(w.contains(datetime!(2026-05-01 09:30 UTC)));
        assert!(!w.contains(datetime!(2026-05-01 10:00 UTC)));
        assert!(w.contains(datetime!(2026-05-31 09:59 UTC)));
        assert!(!w.contains(datetime!(2027-05-31 09:59 UTC)));
    }

    // ---- problems, each at its place -------------------------------------------------------

    #[test]
    fn unknown_zone_names_a_close_one() {
        let e = one_error(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - location: Europe/Berln\n",
        );
        assert!(e.starts_with("rules/times.yaml:4:19: time interval `w`: location `Europe/Berln` is not an IANA time zone name"), "{e}");
        assert!(e.contains("did you mean `Europe/Berlin`?"), "{e}");
        let e = one_error(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - location: Middle/Earth\n",
        );
        assert!(e.starts_with("rules/times.yaml:4:19: "), "{e}");
        assert!(e.contains("such as `Europe/Berlin`"), "{e}");
    }

    #[test]
    fn bad_times() {
        let e = one_error(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - times:\n          - start_time: '10:00'\n            end_time: '09:00'\n",
        );
        assert!(e.starts_with("rules/times.yaml:5:25: time interval `w`: start_time `10:00` is not before end_time `09:00`"), "{e}");
        assert!(e.contains("`10:00`–`24:00` and `00:00`–`09:00`"), "{e}");
        let range = |start: &str, end: &str| {
            one_error(&format!(
                "time_intervals:\n  - name: w\n    time_intervals:\n      - times: [{{start_time: '{start}', end_time: '{end}'}}]\n"
            ))
        };
        let e = range("22:00", "00:00");
        assert!(e.ends_with("write `24:00` for the end of the day"), "{e}");
        let e = range("12:00", "12:00");
        assert!(e.ends_with("the range is empty"), "{e}");

        let e = one_error(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - times:\n          - start_time: '08:00'\n            end_time: '25:00'\n",
        );
        assert!(e.starts_with("rules/times.yaml:6:23: time interval `w`: end_time `25:00` is not a time of day: write HH:MM from 00:00 to 24:00"), "{e}");

        let e = one_error(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - times: [{start_time: '9:30', end_time: '12:00'}]\n",
        );
        assert!(e.starts_with("rules/times.yaml:4:30: "), "{e}");
        assert!(e.contains("(`09:30`)"), "{e}");

        for bad in ["24:01", "12:60", "noon", "1200", "-1:00"] {
            let e = one_error(&format!(
                "time_intervals:\n  - name: w\n    time_intervals:\n      - times: [{{start_time: '00:00', end_time: '{bad}'}}]\n"
            ));
            assert!(
                e.contains(&format!("end_time `{bad}` is not a time of day")),
                "{e}"
            );
        }
    }

    #[test]
    fn bad_days_of_month() {
        let at = |yaml_list: &str| {
            one_error(&format!(
                "time_intervals:\n  - name: w\n    time_intervals:\n      - days_of_month: [{yaml_list}]\n"
            ))
        };
        let e = at("'0'");
        assert!(e.starts_with("rules/times.yaml:4:25: time interval `w`: days_of_month: `0` is not a day of the month: write 1 to 31"), "{e}");
        let e = at("'1', '32'");
        assert!(e.starts_with("rules/times.yaml:4:30: "), "{e}");
        assert!(e.contains("`32` is not a day of the month"), "{e}");
        let e = at("'-32'");
        assert!(e.contains("`-32` is not a day of the month"), "{e}");
        let e = at("'-3:5'");
        assert!(
            e.contains("end it at a negative day too, e.g. `-3:-1`"),
            "{e}"
        );
        let e = at("'20:10'");
        assert!(e.contains("`20:10` matches no day in any month"), "{e}");
        let e = at("'-1:-3'");
        assert!(e.contains("matches no day"), "{e}");
        let e = at("'31:-2'");
        assert!(e.contains("matches no day"), "{e}");
        let e = at("'1:2:3'");
        assert!(e.contains("`1:2:3` is not a range"), "{e}");
    }

    #[test]
    fn bad_weekdays_months_years() {
        let e = one_error(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - weekdays: ['monday', 'fridya']\n",
        );
        assert!(
            e.starts_with(
                "rules/times.yaml:4:30: time interval `w`: weekdays: `fridya` is not a weekday"
            ),
            "{e}"
        );
        assert!(e.contains("did you mean `friday`?"), "{e}");
        let e = one_error(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - weekdays: ['friday:monday']\n",
        );
        assert!(
            e.contains("write `friday:saturday` and `sunday:monday`"),
            "{e}"
        );

        let e = one_error(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - months: ['13']\n",
        );
        assert!(
            e.starts_with("rules/times.yaml:4:18: time interval `w`: months: `13` is not a month"),
            "{e}"
        );
        let e = one_error(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - months: ['novembr:february']\n",
        );
        assert!(e.contains("did you mean `november`?"), "{e}");
        let e = one_error(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - months: ['november:2']\n",
        );
        assert!(
            e.contains("write `november:december` and `january:february`"),
            "{e}"
        );

        let e = one_error(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - years: ['2030:2026']\n",
        );
        assert!(e.starts_with("rules/times.yaml:4:17: "), "{e}");
        assert!(
            e.contains("write the earlier year first, `2026:2030`"),
            "{e}"
        );
        let e = one_error(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - years: ['twenty']\n",
        );
        assert!(e.contains("`twenty` is not a year"), "{e}");
    }

    #[test]
    fn empty_lists_and_names() {
        let e =
            one_error("time_intervals:\n  - name: w\n    time_intervals:\n      - weekdays: []\n");
        assert!(
            e.starts_with("rules/times.yaml:4:19: time interval `w`: weekdays is empty"),
            "{e}"
        );
        assert!(e.contains("leave `weekdays` out"), "{e}");
        let e = one_error("time_intervals:\n  - name: ''\n");
        assert!(e.starts_with("rules/times.yaml:2:11: "), "{e}");
        assert!(e.contains("time interval name is empty"), "{e}");
    }

    #[test]
    fn every_problem_is_reported() {
        let errors = errors(
            "time_intervals:\n  - name: w\n    time_intervals:\n      - weekdays: ['funday']\n        months: ['smarch']\n        location: Nowhere/Land\n      - times: [{start_time: '5', end_time: '06:00'}]\n",
        );
        assert_eq!(errors.len(), 4, "{errors:#?}");
    }

    #[test]
    fn duplicate_names_point_at_the_first() {
        let e = one_error("time_intervals:\n  - name: w\n  - name: x\n  - name: w\n");
        assert_eq!(
            e,
            "rules/times.yaml:4:11: time interval `w` is defined twice: first at rules/times.yaml:2:11; rename one"
        );

        // Across files: the second file's definition is the error; the first one stays.
        let parse = |yaml: &str| serde_saphyr::from_str::<File>(yaml).unwrap().time_intervals;
        let mut problems = Diagnostics::default();
        let mut intervals = TimeIntervals::compile(
            Path::new("rules/a.yaml"),
            parse("time_intervals:\n  - name: w\n    time_intervals: [{weekdays: [monday]}]\n"),
            &mut problems,
        );
        intervals.add(
            Path::new("rules/b.yaml"),
            parse("time_intervals:\n  - name: v\n  - name: w\n"),
            &mut problems,
        );
        assert_eq!(
            problems.to_string(),
            "rules/b.yaml:3:11: time interval `w` is defined twice: first at rules/a.yaml:2:11; rename one"
        );
        assert_eq!(intervals.names().collect::<Vec<_>>(), ["v", "w"]);
        assert_eq!(
            intervals.contains("w", datetime!(2026-03-02 12:00 UTC)),
            Some(true),
            "the first definition (Mondays) is kept"
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        let yaml =
            "time_intervals:\n  - name: w\n    time_intervals:\n      - weekday: ['monday']\n";
        let err = serde_saphyr::from_str::<File>(yaml).unwrap_err();
        let d = Diagnostic::yaml(Path::new(FILE), &err);
        assert!(d.to_string().contains("weekday"), "{d}");
        assert_eq!(d.line, 4, "{d}");
        let yaml = "time_intervals:\n  - name: w\n    weekdays: ['monday']\n";
        assert!(serde_saphyr::from_str::<File>(yaml).is_err());
    }
}
