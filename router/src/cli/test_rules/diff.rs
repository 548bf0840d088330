//! Comparing a payload a test expects with one a sink got: as a subset or whole, a text
//! in any of its strings; and, for a failure to show, a line diff of the two written as
//! pretty JSON (the got side laid out in the expected one's shape, so only what differs
//! shows).

use serde_json::Value;

/// Lines of unchanged context kept around each change; longer runs are cut.
const CONTEXT: usize = 3;
/// Above this many cells, the diff does not look for common lines in the middle (a
/// payload is a few dozen lines; this only bounds a huge one).
const MAX_TABLE: usize = 4_000_000;

/// Whether `got` has what `want` says: with `subset`, the keys `want` names with their
/// values (recursively; a list must have as many elements, each matching), else exactly
/// `want`. Numbers are equal by value (`12` and `12.0`).
pub fn matches(want: &Value, got: &Value, subset: bool) -> bool {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            (subset || w.len() == g.len())
                && w.iter()
                    .all(|(k, wv)| g.get(k).is_some_and(|gv| matches(wv, gv, subset)))
        }
        (Value::Array(w), Value::Array(g)) => {
            w.len() == g.len() && w.iter().zip(g).all(|(wv, gv)| matches(wv, gv, subset))
        }
        (Value::Number(w), Value::Number(g)) => w == g || w.as_f64() == g.as_f64(),
        _ => want == got,
    }
}

/// Whether any string in `payload` (not its keys) contains `text`.
pub fn contains_text(payload: &Value, text: &str) -> bool {
    match payload {
        Value::String(s) => s.contains(text),
        Value::Array(items) => items.iter().any(|v| contains_text(v, text)),
        Value::Object(map) => map.values().any(|v| contains_text(v, text)),
        _ => false,
    }
}

/// `got` laid out like `want`, for a diff: `want`'s keys first and in its order; with
/// `subset`, only those keys. Numbers equal by value are written as `want` has them.
pub fn aligned(got: &Value, want: &Value, subset: bool) -> Value {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            let mut out = serde_json::Map::new();
            for (k, wv) in w {
                if let Some(gv) = g.get(k) {
                    out.insert(k.clone(), aligned(gv, wv, subset));
                }
            }
            if !subset {
                for (k, gv) in g {
                    if !w.contains_key(k) {
                        out.insert(k.clone(), gv.clone());
                    }
                }
            }
            Value::Object(out)
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => Value::Array(
            g.iter()
                .zip(w)
                .map(|(gv, wv)| aligned(gv, wv, subset))
                .collect(),
        ),
        (Value::Number(_), Value::Number(_)) if matches(want, got, false) => want.clone(),
        _ => got.clone(),
    }
}

/// `want` and `got` (laid out like `want`) as a line diff of pretty JSON, and how many
/// lines differ (to pick the closest of several payloads).
pub fn json_diff(want: &Value, got: &Value, subset: bool) -> (String, usize) {
    let want_text = pretty(want);
    let got_text = pretty(&aligned(got, want, subset));
    let lines = line_diff(&want_text, &got_text);
    let changed = lines.iter().filter(|l| !matches!(l, Line::Same(_))).count();
    (render(&lines), changed)
}

pub fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<'a> {
    Same(&'a str),
    /// Only in what was expected.
    Removed(&'a str),
    /// Only in what was got.
    Added(&'a str),
}

/// The lines of `a` and `b`, those in a longest common subsequence kept as they are,
/// the rest removed (from `a`) or added (from `b`).
pub fn line_diff<'a>(a: &'a str, b: &'a str) -> Vec<Line<'a>> {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut out: Vec<Line> = a[..prefix].iter().map(|l| Line::Same(l)).collect();
    if ma.len().saturating_mul(mb.len()) > MAX_TABLE {
        out.extend(ma.iter().map(|l| Line::Removed(l)));
        out.extend(mb.iter().map(|l| Line::Added(l)));
    } else {
        // lcs[i][j]: the longest common subsequence of ma[i..] and mb[j..].
        let width = mb.len() + 1;
        let mut lcs = vec![0u32; (ma.len() + 1) * width];
        for i in (0..ma.len()).rev() {
            for j in (0..mb.len()).rev() {
                lcs[i * width + j] = if ma[i] == mb[j] {
                    lcs[(i + 1) * width + j + 1] + 1
                } else {
                    lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < ma.len() && j < mb.len() {
            if ma[i] == mb[j] {
                out.push(Line::Same(ma[i]));
                i += 1;
                j += 1;
            } else if lcs[(i + 1) * width + j] >= lcs[i * width + j + 1] {
                out.push(Line::Removed(ma[i]));
                i += 1;
            } else {
                out.push(Line::Added(mb[j]));
                j += 1;
            }
        }
        out.extend(ma[i..].iter().map(|l| Line::Removed(l)));
        out.extend(mb[j..].iter().map(|l| Line::Added(l)));
    }
    out.extend(a[a.len() - suffix..].iter().map(|l| Line::Same(l)));
    out
}

/// The diff as text, `-` before an expected line, `+` before a got one, two spaces
/// before a common one; runs of common lines longer than twice [`CONTEXT`] are cut
/// to `...`.
pub fn render(lines: &[Line]) -> String {
    let changed: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !matches!(l, Line::Same(_)))
        .map(|(i, _)| i)
        .collect();
    let near_change = |i: usize| changed.iter().any(|&c| c.abs_diff(i) <= CONTEXT);
    let mut out = String::new();
    let mut cut = false;
    for (i, line) in lines.iter().enumerate() {
        match line {
            Line::Same(l) if near_change(i) || changed.is_empty() => {
                out.push_str(&format!("  {l}\n"));
                cut = false;
            }
            Line::Same(_) => {
                if !cut {
                    out.push_str("  ...\n");
                    cut = true;
                }
            }
            Line::Removed(l) => {
                out.push_str(&format!("- {l}\n"));
                cut = false;
            }
            Line::Added(l) => {
                out.push_str(&format!("+ {l}\n"));
                cut = false;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_matching() {
        let got =
            json!({"embeds": [{"title": "Drawdown", "color": 1}], "username": "bot", "n": 12});
        assert!(matches(
            &json!({"embeds": [{"title": "Drawdown"}]}),
            &got,
            true
        ));
        assert!(matches(&json!({"n": 12.0}), &got, true), "numbers by value");
        assert!(matches(&json!({}), &got, true));
        assert!(!matches(
            &json!({"embeds": [{"title": "Drawup"}]}),
            &got,
            true
        ));
        assert!(
            !matches(&json!({"embeds": []}), &got, true),
            "lists: the same length"
        );
        assert!(
            !matches(&json!({"missing": null}), &got, true),
            "a key must be there"
        );
        assert!(
            !matches(&json!({"n": "12"}), &got, true),
            "a number is not text"
        );
        assert!(!matches(
            &json!({"embeds": {"title": "Drawdown"}}),
            &got,
            true
        ));
        // Exact: nothing more, nothing less.
        assert!(matches(&got.clone(), &got, false));
        assert!(!matches(
            &json!({"embeds": [{"title": "Drawdown"}], "username": "bot", "n": 12}),
            &got,
            false
        ));
        assert!(!matches(
            &json!({"embeds": [{"title": "Drawdown", "color": 1}], "username": "bot"}),
            &got,
            false
        ));
    }

    #[test]
    fn contains_looks_in_every_string_but_not_keys() {
        let p = json!({"text": "🔴 Drawdown 12%", "embeds": [{"fields": [{"value": "on bot a"}]}], "n": 5});
        assert!(contains_text(&p, "Drawdown"));
        assert!(contains_text(&p, "bot a"));
        assert!(!contains_text(&p, "text"), "keys are not text");
        assert!(!contains_text(&p, "5"), "numbers are not text");
    }

    #[test]
    fn aligned_follows_the_expected_shape() {
        let got = json!({"z": 1, "text": "a", "embeds": [{"color": 3, "title": "t"}]});
        let want = json!({"embeds": [{"title": "u"}], "text": "a"});
        assert_eq!(
            aligned(&got, &want, true).to_string(),
            r#"{"embeds":[{"title":"t"}],"text":"a"}"#
        );
        assert_eq!(
            aligned(&got, &want, false).to_string(),
            r#"{"embeds":[{"title":"t","color":3}],"text":"a","z":1}"#
        );
        assert_eq!(
            aligned(&json!({"n": 12}), &json!({"n": 12.0}), true),
            json!({"n": 12.0})
        );
    }

    #[test]
    fn line_diff_keeps_the_common_lines() {
        let d = line_diff("a\nb\nc\nd\n", "a\nx\nc\nd\ne\n");
        assert_eq!(
            d,
            [
                Line::Same("a"),
                Line::Removed("b"),
                Line::Added("x"),
                Line::Same("c"),
                Line::Same("d"),
                Line::Added("e"),
            ]
        );
        assert_eq!(line_diff("", "a"), [Line::Added("a")]);
        assert_eq!(line_diff("a", ""), [Line::Removed("a")]);
        assert_eq!(
            line_diff("a\nb", "a\nb"),
            [Line::Same("a"), Line::Same("b")]
        );
        // A moved line: one side kept, the other removed and added.
        let d = line_diff("a\nb\nc", "b\nc\na");
        assert_eq!(
            d,
            [
                Line::Removed("a"),
                Line::Same("b"),
                Line::Same("c"),
                Line::Added("a")
            ]
        );
    }

    #[test]
    fn a_payload_diff_shows_what_differs_with_a_little_context() {
        let want = json!({"text": "Drawdown 12%", "parse_mode": "HTML"});
        let got = json!({"chat_id": 1, "text": "Drawdown 11%", "parse_mode": "HTML"});
        let (text, changed) = json_diff(&want, &got, true);
        assert_eq!(
            text,
            "  {\n-   \"text\": \"Drawdown 12%\",\n+   \"text\": \"Drawdown 11%\",\n    \"parse_mode\": \"HTML\"\n  }\n"
        );
        assert_eq!(changed, 2);
        // Exact: the extra key shows too.
        let (text, _) = json_diff(&want, &got, false);
        assert!(text.contains("+   \"chat_id\": 1\n"), "{text}");
        // A long run of equal lines is cut.
        let many: serde_json::Map<String, Value> =
            (0..20).map(|i| (format!("k{i:02}"), json!(i))).collect();
        let mut other = many.clone();
        other.insert("k10".into(), json!("ten"));
        let (text, changed) = json_diff(&Value::Object(many), &Value::Object(other), false);
        assert_eq!(changed, 2);
        assert_eq!(text.matches("  ...\n").count(), 2, "{text}");
        assert!(
            text.contains("-   \"k10\": 10,\n+   \"k10\": \"ten\",\n"),
            "{text}"
        );
        assert!(
            text.contains("    \"k07\": 7,\n") && !text.contains("\"k06\""),
            "{text}"
        );
    }
}
