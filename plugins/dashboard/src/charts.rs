//! The dashboard's charts, drawn with plotters into SVG strings: the equity curve (with
//! a hover target and a `<title>` per point, so hovering shows the time and value) and
//! the portfolio distribution donut. Both scale to their container (`viewBox`, no fixed
//! size) and take the page's theme.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::Theme;

/// The equity chart's size when the page does not say how wide it is drawn.
pub const EQUITY_WIDTH: u32 = 800;
/// The narrowest and widest equity chart drawn (pixels).
pub const EQUITY_WIDTHS: (u32, u32) = (280, 1600);
const DONUT_WIDTH: u32 = 340;
/// The donut's own height; the legend adds a row per slice below it.
const DONUT_HEIGHT: u32 = 220;
const LEGEND_ROW: u32 = 26;
/// Pixels per hover target on the equity curve, at least.
const HOVER_SPACING: usize = 4;
/// Slices the donut shows; smaller positions are summed as "Other".
const MAX_SLICES: usize = 7;
const FONT: &str = "sans-serif";

/// Up (or flat) and down, as everywhere on the page.
pub const GREEN: RGBColor = RGBColor(0x21, 0xc3, 0x54);
pub const RED: RGBColor = RGBColor(0xff, 0x4b, 0x4b);
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x4c, 0x9a, 0xff),
    RGBColor(0xf5, 0xa6, 0x23),
    RGBColor(0x21, 0xc3, 0x54),
    RGBColor(0xb3, 0x7f, 0xeb),
    RGBColor(0x00, 0xc2, 0xc7),
    RGBColor(0xff, 0x6b, 0x9a),
    RGBColor(0xc9, 0xd1, 0x4d),
    RGBColor(0x8b, 0x94, 0x9e),
];

struct Colors {
    text: RGBColor,
    muted: RGBColor,
    grid: RGBColor,
}

fn colors(theme: Theme) -> Colors {
    match theme {
        Theme::Dark => Colors {
            text: RGBColor(0xe6, 0xed, 0xf3),
            muted: RGBColor(0x9d, 0xa7, 0xb3),
            grid: RGBColor(0x30, 0x36, 0x3d),
        },
        Theme::Light => Colors {
            text: RGBColor(0x1f, 0x23, 0x28),
            muted: RGBColor(0x57, 0x60, 0x6a),
            grid: RGBColor(0xd0, 0xd7, 0xde),
        },
    }
}

/// One point of the equity curve: Unix seconds and the value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub time: i64,
    pub value: f64,
}

/// The points of the router's `state/equity` answer, oldest first; points with a
/// missing or unreadable time or value are skipped.
pub fn equity_points(answer: &Value) -> Vec<Point> {
    answer
        .get("points")
        .and_then(Value::as_array)
        .map(|points| {
            points
                .iter()
                .filter_map(|p| {
                    let time = OffsetDateTime::parse(p.get("time")?.as_str()?, &Rfc3339).ok()?;
                    let value = p.get("value")?.as_f64().filter(|v| v.is_finite())?;
                    Some(Point {
                        time: time.unix_timestamp(),
                        value,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The size of an equity chart drawn `width` pixels wide (clamped to
/// [`EQUITY_WIDTHS`]), so its text is drawn at the size it is shown.
pub fn equity_size(width: u32) -> (u32, u32) {
    let w = width.clamp(EQUITY_WIDTHS.0, EQUITY_WIDTHS.1);
    (w, (w * 2 / 5).clamp(200, 340))
}

/// The equity curve for `range` (`1D`, `1W`, `1M`, `all`), `width` pixels wide, green
/// when it ends at or above where it starts, red otherwise.
pub fn equity_svg(points: &[Point], range: &str, theme: Theme, width: u32) -> String {
    let size = equity_size(width);
    let c = colors(theme);
    let mut svg = String::new();
    let mut targets = Vec::new();
    let drawn = draw_equity(&mut svg, size, points, &c, &mut targets);
    if let Err(e) = drawn {
        return message_svg(size, &format!("cannot draw the chart: {e}"), &c);
    }
    if points.is_empty() {
        return message_svg(size, "No equity data for this range yet", &c);
    }
    // One hover target per few pixels at most: a long history stays a light SVG.
    let most = (size.0 as usize / HOVER_SPACING).max(2);
    if targets.len() > most {
        let last = targets.len() - 1;
        targets = (0..most).map(|k| targets[k * last / (most - 1)]).collect();
    }
    let mut hover = String::from("<g class=\"hover\">\n");
    for (i, (x, y, p)) in targets.iter().enumerate() {
        let left = if i == 0 {
            *x - 4
        } else {
            (targets[i - 1].0 + x) / 2
        };
        let right = targets.get(i + 1).map_or(*x + 4, |n| (x + n.0) / 2);
        hover.push_str(&format!(
            "<g class=\"pt\" data-time=\"{}\" data-value=\"{}\"><rect x=\"{left}\" y=\"10\" width=\"{}\" height=\"{}\" fill=\"transparent\"/><circle cx=\"{x}\" cy=\"{y}\" r=\"4\"/><title>{}</title></g>\n",
            p.time,
            p.value,
            (right - left).max(1),
            size.1 as i32 - 45,
            escape(&format!("{} · {}", datetime(p.time), money(p.value))),
        ));
    }
    hover.push_str("</g>\n");
    finish(
        svg,
        "equity",
        &[("range", range), ("points", &points.len().to_string())],
        &hover,
    )
}

fn draw_equity(
    svg: &mut String,
    size: (u32, u32),
    points: &[Point],
    c: &Colors,
    targets: &mut Vec<(i32, i32, Point)>,
) -> Result<(), String> {
    if points.is_empty() {
        return Ok(());
    }
    let root = SVGBackend::with_string(svg, size).into_drawing_area();
    let (mut t0, mut t1) = (points[0].time, points[points.len() - 1].time);
    if t1 <= t0 {
        t0 -= 1800;
        t1 += 1800;
    }
    let (lo, hi) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.value), hi.max(p.value))
    });
    let pad = ((hi - lo) * 0.08).max(hi.abs() * 0.002).max(1.0);
    let (y0, y1) = (lo - pad, hi + pad);
    let up = points[points.len() - 1].value >= points[0].value;
    let line = if up { GREEN } else { RED };
    let span = t1 - t0;
    let x_fmt = move |t: &i64| axis_time(*t, span);
    let y_fmt = |v: &f64| compact_money(*v);
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .margin_left(4)
        .x_label_area_size(30)
        .y_label_area_size(66)
        .build_cartesian_2d(t0..t1, y0..y1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_labels((size.0 / 110).clamp(3, 10) as usize)
        .y_labels(5)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((FONT, 16).into_font().color(&c.muted))
        .axis_style(c.grid)
        .bold_line_style(c.grid.mix(0.6))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(
            AreaSeries::new(points.iter().map(|p| (p.time, p.value)), y0, line.mix(0.15))
                .border_style(line.stroke_width(2)),
        )
        .map_err(|e| e.to_string())?;
    for p in points {
        let (x, y) = chart.backend_coord(&(p.time, p.value));
        targets.push((x, y, *p));
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

/// A position's share of the donut.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    pub label: String,
    pub value: f64,
}

/// The slices for the router's `state/positions` answer: each position's value (absolute,
/// so shorts count by size), largest first, the smallest summed as "Other".
pub fn allocation_slices(answer: &Value) -> Vec<Slice> {
    let mut slices: Vec<Slice> = answer
        .get("positions")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|p| {
                    let value = p.get("value")?.as_f64()?.abs();
                    let symbol = p.get("symbol")?.as_str()?;
                    let side = p.get("side").and_then(Value::as_str).unwrap_or("");
                    let label = if side == "SHORT" {
                        format!("{symbol} (short)")
                    } else {
                        symbol.to_owned()
                    };
                    (value.is_finite() && value > 0.0).then_some(Slice { label, value })
                })
                .collect()
        })
        .unwrap_or_default();
    slices.sort_by(|a, b| b.value.total_cmp(&a.value));
    if slices.len() > MAX_SLICES {
        let other: f64 = slices[MAX_SLICES - 1..].iter().map(|s| s.value).sum();
        slices.truncate(MAX_SLICES - 1);
        slices.push(Slice {
            label: "Other".into(),
            value: other,
        });
    }
    slices
}

/// The portfolio distribution donut, with a legend row per slice (symbol, value, share)
/// below it.
pub fn allocation_svg(slices: &[Slice], theme: Theme) -> String {
    let c = colors(theme);
    let size = (
        DONUT_WIDTH,
        DONUT_HEIGHT + LEGEND_ROW * slices.len() as u32 + 8,
    );
    if slices.is_empty() {
        return message_svg((DONUT_WIDTH, DONUT_HEIGHT), "No open positions", &c);
    }
    let mut svg = String::new();
    if let Err(e) = draw_donut(&mut svg, size, slices, &c) {
        return message_svg(size, &format!("cannot draw the chart: {e}"), &c);
    }
    let total: f64 = slices.iter().map(|s| s.value).sum();
    let mut titles = String::from("<g class=\"legend-values\">\n");
    for s in slices {
        titles.push_str(&format!(
            "<title>{}</title>\n",
            escape(&format!(
                "{}: {} ({:.1}%)",
                s.label,
                money(s.value),
                s.value / total * 100.0
            ))
        ));
    }
    titles.push_str("</g>\n");
    finish(
        svg,
        "allocation",
        &[("slices", &slices.len().to_string())],
        &titles,
    )
}

fn draw_donut(
    svg: &mut String,
    size: (u32, u32),
    slices: &[Slice],
    c: &Colors,
) -> Result<(), String> {
    let root = SVGBackend::with_string(svg, size).into_drawing_area();
    let sizes: Vec<f64> = slices.iter().map(|s| s.value).collect();
    let palette: Vec<RGBColor> = (0..slices.len())
        .map(|i| PALETTE[i % PALETTE.len()])
        .collect();
    let labels: Vec<&str> = slices.iter().map(|_| "").collect();
    let center = (size.0 as i32 / 2, DONUT_HEIGHT as i32 / 2);
    let radius = 100.0;
    let mut pie = Pie::new(&center, &radius, &sizes, &palette, &labels);
    pie.start_angle(-90.0);
    pie.donut_hole(64.0);
    root.draw(&pie).map_err(|e| e.to_string())?;
    let total: f64 = sizes.iter().sum();
    let centered = Pos::new(HPos::Center, VPos::Center);
    root.draw(&Text::new(
        compact_money(total),
        (center.0, center.1 - 9),
        (FONT, 26).into_font().color(&c.text).pos(centered),
    ))
    .map_err(|e| e.to_string())?;
    root.draw(&Text::new(
        "in positions",
        (center.0, center.1 + 16),
        (FONT, 16).into_font().color(&c.muted).pos(centered),
    ))
    .map_err(|e| e.to_string())?;
    let left = Pos::new(HPos::Left, VPos::Center);
    let right = Pos::new(HPos::Right, VPos::Center);
    for (i, s) in slices.iter().enumerate() {
        let y = DONUT_HEIGHT as i32 + 12 + i as i32 * LEGEND_ROW as i32;
        root.draw(&Rectangle::new(
            [(12, y - 7), (26, y + 7)],
            palette[i].filled(),
        ))
        .map_err(|e| e.to_string())?;
        root.draw(&Text::new(
            s.label.clone(),
            (36, y),
            (FONT, 18).into_font().color(&c.text).pos(left),
        ))
        .map_err(|e| e.to_string())?;
        root.draw(&Text::new(
            format!(
                "{} · {:.1}%",
                compact_money(s.value),
                s.value / total * 100.0
            ),
            (size.0 as i32 - 12, y),
            (FONT, 17).into_font().color(&c.muted).pos(right),
        ))
        .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

/// A chart-sized SVG with one line of text (no data, or an error).
fn message_svg(size: (u32, u32), text: &str, c: &Colors) -> String {
    let svg = format!(
        "<svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\">\n<text x=\"{x}\" y=\"{y}\" text-anchor=\"middle\" font-family=\"{FONT}\" font-size=\"15\" fill=\"{color}\">{text}</text>\n</svg>\n",
        w = size.0,
        h = size.1,
        x = size.0 / 2,
        y = size.1 / 2,
        color = hex(c.muted),
        text = escape(text),
    );
    finish(svg, "empty", &[("points", "0")], "")
}

/// Makes the SVG scale with its container, tags it with `kind` and `attrs` (as
/// `data-*`), and appends `extra` before the closing tag.
fn finish(svg: String, kind: &str, attrs: &[(&str, &str)], extra: &str) -> String {
    let mut data = format!("class=\"chart chart-{kind}\" role=\"img\"");
    for (k, v) in attrs {
        data.push_str(&format!(" data-{k}=\"{}\"", escape(v)));
    }
    let mut svg = match svg.find("<svg ") {
        Some(i) => {
            let rest = &svg[i + 5..];
            // `width="W" height="H"` come first; the viewBox keeps the proportions.
            let rest = match rest.find(" viewBox") {
                Some(j) => &rest[j + 1..],
                None => rest,
            };
            format!("<svg {data} preserveAspectRatio=\"xMidYMid meet\" {rest}")
        }
        None => svg,
    };
    if let Some(end) = svg.rfind("</svg>") {
        svg.insert_str(end, extra);
    }
    svg
}

fn hex(c: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

/// Escapes text for SVG/XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `$12,345.67` (negative: `-$12.00`).
pub fn money(v: f64) -> String {
    let sign = if v < 0.0 { "-" } else { "" };
    let cents = (v.abs() * 100.0).round() as u64;
    let (whole, frac) = (cents / 100, cents % 100);
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{sign}${grouped}.{frac:02}")
}

/// `$12.5k`, `$1.25M`, `$950`: for axis labels.
pub fn compact_money(v: f64) -> String {
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    if a >= 1e6 {
        format!("{sign}${:.2}M", a / 1e6)
    } else if a >= 1e4 {
        format!("{sign}${:.1}k", a / 1e3)
    } else if a >= 1e3 {
        format!("{sign}${:.2}k", a / 1e3)
    } else {
        format!("{sign}${a:.0}")
    }
}

fn civil(t: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t).ok()
}

/// `2025-11-03 14:30 UTC`.
fn datetime(t: i64) -> String {
    civil(t).map_or_else(String::new, |d| {
        format!(
            "{}-{:02}-{:02} {:02}:{:02} UTC",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute()
        )
    })
}

/// An axis label: the time of day for spans up to two days, else the date.
fn axis_time(t: i64, span: i64) -> String {
    civil(t).map_or_else(String::new, |d| {
        if span <= 2 * 86_400 {
            format!("{:02}:{:02}", d.hour(), d.minute())
        } else {
            format!("{:02}-{:02}", u8::from(d.month()), d.day())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn curve(values: &[(i64, f64)]) -> Vec<Point> {
        values
            .iter()
            .map(|&(time, value)| Point { time, value })
            .collect()
    }

    #[test]
    fn the_routers_equity_answer_becomes_points() {
        let answer = json!({"points": [
            {"time": "2025-11-03T00:00:00Z", "value": 50000.0},
            {"time": "bad", "value": 1.0},
            {"time": "2025-11-03T00:15:00Z", "value": 50125.5},
        ], "range": "all", "source": "portfolio_update"});
        assert_eq!(
            equity_points(&answer),
            curve(&[(1_762_128_000, 50_000.0), (1_762_128_900, 50_125.5)])
        );
        assert!(equity_points(&json!({"empty": true})).is_empty());
    }

    #[test]
    fn the_equity_chart_has_a_hover_title_per_point_and_scales() {
        let up = curve(&[
            (1_762_128_000, 50_000.0),
            (1_762_131_600, 50_500.0),
            (1_762_135_200, 51_250.0),
        ]);
        let svg = equity_svg(&up, "1D", Theme::Dark, EQUITY_WIDTH);
        assert!(
            svg.starts_with("<svg class=\"chart chart-equity\""),
            "{}",
            &svg[..200]
        );
        assert!(svg.contains("data-range=\"1D\" data-points=\"3\""));
        assert!(
            !svg.contains("width=\"800\""),
            "the chart scales with its container"
        );
        assert!(svg.contains("viewBox=\"0 0 800 320\""));
        assert_eq!(equity_size(390), (390, 200));
        assert_eq!(equity_size(10_000), (1600, 340));
        assert_eq!(svg.matches("<title>").count(), 3);
        assert!(
            svg.contains("<title>2025-11-03 02:00 UTC · $51,250.00</title>"),
            "{svg}"
        );
        assert!(svg.contains(&hex(GREEN)), "a rising curve is green");
        assert!(svg.trim_end().ends_with("</svg>"));
        let down = curve(&[(1_762_128_000, 50_000.0), (1_762_131_600, 49_000.0)]);
        assert!(
            equity_svg(&down, "1D", Theme::Light, EQUITY_WIDTH).contains(&hex(RED)),
            "a falling curve is red"
        );
        let one = equity_svg(&up[..1], "all", Theme::Dark, 390);
        assert_eq!(one.matches("<title>").count(), 1);
        let long: Vec<Point> = (0..2000)
            .map(|i| Point {
                time: 1_762_128_000 + i * 60,
                value: 50_000.0 + i as f64,
            })
            .collect();
        let svg = equity_svg(&long, "all", Theme::Dark, 400);
        assert_eq!(
            svg.matches("<title>").count(),
            100,
            "one hover target per 4 pixels"
        );
        assert!(svg.contains("data-points=\"2000\""));
        assert!(
            svg.contains("$51,999.00</title>"),
            "the newest point keeps its target"
        );
        let none = equity_svg(&[], "1W", Theme::Dark, 100);
        assert!(none.contains("No equity data for this range yet"), "{none}");
        assert!(none.contains("data-points=\"0\""));
    }

    #[test]
    fn the_donut_sums_small_positions_as_other() {
        let positions: Vec<serde_json::Value> = (0..9)
            .map(|i| json!({"symbol": format!("S{i}/USDT"), "side": if i == 0 {"SHORT"} else {"LONG"}, "value": 1000.0 * (i + 1) as f64}))
            .collect();
        let slices = allocation_slices(&json!({"positions": positions}));
        assert_eq!(slices.len(), MAX_SLICES);
        assert_eq!(
            slices[0],
            Slice {
                label: "S8/USDT".into(),
                value: 9000.0
            }
        );
        assert_eq!(
            slices[MAX_SLICES - 1],
            Slice {
                label: "Other".into(),
                value: 1000.0 + 2000.0 + 3000.0
            }
        );
        let svg = allocation_svg(&slices, Theme::Dark);
        assert!(svg.contains("class=\"chart chart-allocation\""));
        assert!(svg.contains("S8/USDT"));
        assert!(
            svg.contains("<title>S8/USDT: $9,000.00 (20.0%)</title>"),
            "{svg}"
        );
        let short = allocation_slices(
            &json!({"positions": [{"symbol": "BTC/USDT", "side": "SHORT", "value": -5.0}]}),
        );
        assert_eq!(
            short,
            [Slice {
                label: "BTC/USDT (short)".into(),
                value: 5.0
            }]
        );
        assert!(allocation_svg(&[], Theme::Light).contains("No open positions"));
    }

    #[test]
    fn numbers_read_like_money() {
        assert_eq!(money(12_345.678), "$12,345.68");
        assert_eq!(money(-200.0), "-$200.00");
        assert_eq!(money(0.5), "$0.50");
        assert_eq!(money(1_000_000.0), "$1,000,000.00");
        assert_eq!(compact_money(12_500.0), "$12.5k");
        assert_eq!(compact_money(1_250_000.0), "$1.25M");
        assert_eq!(compact_money(-950.0), "-$950");
        assert_eq!(escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
