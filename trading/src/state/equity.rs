//! The equity curve: value over time, thinned so a long history stays at most a fixed
//! number of points while its shape, its first and last points and its minimum and
//! maximum survive; and the daily closes that risk ratios are computed from.

use std::collections::BTreeMap;

/// Unix time in nanoseconds, UTC.
pub(super) type Nanos = i64;

pub(super) const NANOS_PER_DAY: Nanos = 86_400 * 1_000_000_000;

/// The most points a curve keeps (the dashboard draws at most this many).
pub(super) const MAX_POINTS: usize = 2_000;

/// The most daily closes kept: ten years.
pub(super) const MAX_DAYS: usize = 3_660;

/// One value of the curve at one time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Point {
    pub time: Nanos,
    pub value: f64,
}

/// Points in time order, at most `cap` of them.
///
/// When a push makes it longer than `cap`, the older half (all but the first point) is
/// merged in groups of four, each group keeping only its lowest and its highest point in
/// time order. That halves the old part and keeps every group's extremes, so the global
/// minimum and maximum survive any number of merges, and a fall is only shortened when a
/// higher peak follows it within the same group; the newest half keeps full resolution.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Curve {
    points: Vec<Point>,
    cap: usize,
}

impl Curve {
    pub fn new(cap: usize) -> Curve {
        Curve {
            points: Vec::new(),
            // Below 8 the merge could not shrink anything.
            cap: cap.max(8),
        }
    }

    /// A curve holding `points` (in any order), thinned to the cap if needed.
    pub fn from_points(mut points: Vec<Point>, cap: usize) -> Curve {
        points.sort_by_key(|p| p.time);
        let mut curve = Curve::new(cap);
        curve.points = points;
        while curve.points.len() > curve.cap {
            curve.thin();
        }
        curve
    }

    /// Adds a point (after any point with the same time). Returns true when the curve was
    /// thinned, so a stored copy must be rewritten rather than appended to.
    pub fn push(&mut self, point: Point) -> bool {
        match self.points.last() {
            Some(last) if last.time > point.time => {
                let at = self.points.partition_point(|p| p.time <= point.time);
                self.points.insert(at, point);
            }
            _ => self.points.push(point),
        }
        if self.points.len() > self.cap {
            self.thin();
            true
        } else {
            false
        }
    }

    pub fn points(&self) -> &[Point] {
        &self.points
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    pub fn values(&self) -> Vec<f64> {
        self.points.iter().map(|p| p.value).collect()
    }

    fn thin(&mut self) {
        let old_end = 1 + (self.points.len() - 1) / 2;
        let mut kept = Vec::with_capacity(self.points.len());
        kept.push(self.points[0]);
        for group in self.points[1..old_end].chunks(4) {
            let (mut lo, mut hi) = (0, 0);
            for (i, p) in group.iter().enumerate() {
                if p.value < group[lo].value {
                    lo = i;
                }
                if p.value > group[hi].value {
                    hi = i;
                }
            }
            kept.push(group[lo.min(hi)]);
            if lo != hi {
                kept.push(group[lo.max(hi)]);
            }
        }
        kept.extend_from_slice(&self.points[old_end..]);
        self.points = kept;
    }
}

/// The UTC day number (days since 1970-01-01) of a time.
pub(super) fn day_of(time: Nanos) -> i64 {
    time.div_euclid(NANOS_PER_DAY)
}

/// The last value seen on each UTC day, for daily returns; at most [`MAX_DAYS`] days.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct DailyCloses {
    days: BTreeMap<i64, Point>,
}

impl DailyCloses {
    /// Records `point` as its day's close unless that day already has a later one. Returns
    /// the day and point when it changed something (to be stored).
    pub fn record(&mut self, point: Point) -> Option<(i64, Point)> {
        let day = day_of(point.time);
        match self.days.get(&day) {
            Some(close) if close.time > point.time => return None,
            _ => {}
        }
        self.days.insert(day, point);
        while self.days.len() > MAX_DAYS {
            self.days.pop_first();
        }
        Some((day, point))
    }

    /// The closes in day order.
    pub fn values(&self) -> Vec<f64> {
        self.days.values().map(|p| p.value).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::analytics::max_drawdown;
    use super::*;

    fn pt(time: Nanos, value: f64) -> Point {
        Point { time, value }
    }

    #[test]
    fn a_short_curve_is_kept_whole_and_in_time_order() {
        let mut c = Curve::new(MAX_POINTS);
        assert!(!c.push(pt(10, 1.0)));
        assert!(!c.push(pt(30, 3.0)));
        assert!(!c.push(pt(20, 2.0)), "a late point goes in its place");
        assert_eq!(c.values(), vec![1.0, 2.0, 3.0]);
        assert_eq!(c.points().last().copied(), Some(pt(30, 3.0)));
    }

    #[test]
    fn a_long_curve_stays_bounded_and_keeps_its_extremes_and_drawdown() {
        let n = 50_000;
        let raw: Vec<Point> = (0..n)
            .map(|i| {
                let x = i as f64;
                let mut v = 1_000.0 + 100.0 * (x / 700.0).sin() + x / 100.0;
                if i == 12_345 {
                    v = 5_000.0; // the peak
                }
                if i == 12_400 {
                    v = 10.0; // the trough right after it
                }
                pt(i, v)
            })
            .collect();
        let mut c = Curve::new(MAX_POINTS);
        let mut thinned = 0;
        for p in &raw {
            thinned += usize::from(c.push(*p));
        }
        assert!(thinned > 0);
        assert!(
            c.points().len() <= MAX_POINTS,
            "{} points",
            c.points().len()
        );
        assert!(c.points().len() > MAX_POINTS / 2);
        assert_eq!(c.points()[0], raw[0], "the start survives");
        assert_eq!(
            c.points().last().copied(),
            raw.last().copied(),
            "the end survives"
        );
        assert!(c.points().windows(2).all(|w| w[0].time <= w[1].time));
        assert!(c.points().contains(&raw[12_345]));
        assert!(c.points().contains(&raw[12_400]));
        let raw_values: Vec<f64> = raw.iter().map(|p| p.value).collect();
        assert_eq!(max_drawdown(&c.values()), max_drawdown(&raw_values));
        // The newest stretch keeps full resolution.
        let tail = &c.points()[c.points().len() - 100..];
        assert_eq!(tail, &raw[raw.len() - 100..]);
    }

    #[test]
    fn rebuilding_from_stored_points_gives_the_same_curve() {
        let mut c = Curve::new(64);
        for i in 0..1_000 {
            c.push(pt(i, (i % 17) as f64));
        }
        let again = Curve::from_points(c.points().to_vec(), 64);
        assert_eq!(again, c);
        let bigger = Curve::from_points((0..500).map(|i| pt(i, i as f64)).collect(), 64);
        assert!(bigger.points().len() <= 64);
    }

    #[test]
    fn daily_closes_keep_the_last_value_of_each_day() {
        let mut d = DailyCloses::default();
        let day = NANOS_PER_DAY;
        assert!(d.record(pt(day + 10, 100.0)).is_some());
        assert!(d.record(pt(day + 20, 101.0)).is_some());
        assert_eq!(
            d.record(pt(day + 15, 99.0)),
            None,
            "an older value of the day"
        );
        assert!(d.record(pt(2 * day + 1, 110.0)).is_some());
        assert_eq!(d.values(), vec![101.0, 110.0]);
        assert_eq!(day_of(-1), -1);
    }
}
