//! The units router.yaml writes values in: durations (the SDK's grammar, shared with
//! plugin settings), rates (`30/min`) and sizes (`8MiB`).

use std::time::Duration;

pub use alert_router_plugin::parse_duration;

/// A duration as [`parse_duration`] reads it back, in its largest units: `1h30m`, `90s`
/// as `1m30s`, `250ms`.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// `30/min`, `1/s`, `5/2s`, `100/h`: the time between two deliveries at that rate.
pub fn parse_rate(s: &str) -> Result<Duration, String> {
    let (count, period) = parse_count_per(s).map_err(|e| {
        e.replace(
            "a count of zero lets nothing through",
            "a rate of zero would never deliver; disable the sink instead",
        )
    })?;
    Ok(period / count)
}

/// `30/min`, `1/10m`: a count and the period it is allowed in.
pub fn parse_count_per(s: &str) -> Result<(u32, Duration), String> {
    let hint = "write it as count/period, e.g. 30/min, 1/s or 5/2s";
    let (count, per) = s.split_once('/').ok_or_else(|| format!("{s:?}: {hint}"))?;
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: the count must be a whole number; {hint}"))?;
    if count == 0 {
        return Err(format!(
            "{s:?}: a count of zero lets nothing through: write at least 1"
        ));
    }
    let per = per.trim();
    let period = match per {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "min" | "m" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        "d" | "day" => Duration::from_secs(86400),
        other => {
            parse_duration(other).map_err(|_| format!("{s:?}: unknown period {other:?}; {hint}"))?
        }
    };
    if period.is_zero() {
        return Err(format!("{s:?}: the period must be longer than zero"));
    }
    Ok((count, period))
}

/// `512KiB`, `8MiB`, `1MB`, or a plain number of bytes.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size: write e.g. 512KiB or 8MiB"))?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "KiB" => 1024,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?}: use B, KiB, MiB or GiB"
            ));
        }
    };
    Ok(n.saturating_mul(mult))
}
