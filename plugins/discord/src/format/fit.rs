//! Fitting text and embeds to Discord's limits: cut with `…` where the rest is
//! decoration, split where nothing may be lost.

use super::{
    CONTINUED, DESCRIPTION_MAX, ELLIPSIS, EMBEDS_TOTAL_MAX, Embed, FIELD_NAME_MAX, FIELD_VALUE_MAX,
    FIELDS_MAX, Field, Note,
};

/// Spreads one embed over as many as Discord's per-embed limits need: description
/// pieces, long field values as "(cont.)" fields, fields beyond 25 or 6000 characters.
/// The first embed keeps title, url, author and thumbnail; the last gets footer,
/// timestamp and image; every one keeps the color.
pub(super) fn fit_embed(embed: Embed, path: &str, notes: &mut Vec<Note>) -> Vec<Embed> {
    let Embed {
        title,
        description,
        url,
        color,
        timestamp,
        fields,
        footer,
        author,
        mut extra,
    } = embed;
    let image = extra.remove("image");
    let mut done = Vec::new();
    let mut current = Embed {
        title,
        url,
        author,
        color,
        extra,
        ..Embed::default()
    };

    if let Some(description) = description {
        let parts = split(&description, DESCRIPTION_MAX);
        if parts.len() > 1 {
            notes.push(Note::Split {
                path: format!("{path}.description"),
                parts: parts.len(),
                unit: "embeds",
                why: "over 4096 characters",
            });
        }
        for (i, part) in parts.into_iter().enumerate() {
            if i > 0 {
                done.push(std::mem::replace(&mut current, Embed::continuation(color)));
            }
            current.description = Some(part);
        }
    }

    for (i, field) in fields.into_iter().enumerate() {
        let parts = split(&field.value, FIELD_VALUE_MAX);
        if parts.len() > 1 {
            notes.push(Note::Split {
                path: format!("{path}.fields[{i}].value"),
                parts: parts.len(),
                unit: "fields",
                why: "over 1024 characters",
            });
        }
        // Pieces of one value stack, so none of them is inline.
        let inline = field.inline && parts.len() == 1;
        for (j, value) in parts.into_iter().enumerate() {
            let name = if j == 0 {
                field.name.clone()
            } else {
                let (name, _) = truncate(&field.name, FIELD_NAME_MAX - CONTINUED.len());
                format!("{name}{CONTINUED}")
            };
            let piece = Field {
                name,
                value,
                inline,
            };
            let piece_size = piece.name.chars().count() + piece.value.chars().count();
            if current.fields.len() == FIELDS_MAX || current.size() + piece_size > EMBEDS_TOTAL_MAX
            {
                done.push(std::mem::replace(&mut current, Embed::continuation(color)));
            }
            current.fields.push(piece);
        }
    }

    if let Some(footer) = footer {
        if current.size() + footer.chars("text") > EMBEDS_TOTAL_MAX {
            done.push(std::mem::replace(&mut current, Embed::continuation(color)));
        }
        current.footer = Some(footer);
    }
    current.timestamp = timestamp;
    if let Some(image) = image {
        current.extra.insert("image".to_owned(), image);
    }
    done.push(current);
    if done.len() > 1 {
        notes.push(Note::Split {
            path: path.to_owned(),
            parts: done.len(),
            unit: "embeds",
            why: "over Discord's limits for one embed",
        });
    }
    done
}

/// Cuts `text` (trimmed) to at most `limit` characters, ending in `…` when it cut.
/// Returns the text and how many characters of the original it left out.
pub(super) fn truncate(text: &str, limit: usize) -> (String, usize) {
    let text = text.trim();
    let total = text.chars().count();
    if total <= limit {
        return (text.to_owned(), 0);
    }
    if limit == 0 {
        return (String::new(), total);
    }
    let mut kept = text[..byte_index(text, limit - 1)].trim_end().to_owned();
    if ends_in_escape(&kept) {
        kept.pop();
    }
    let removed = total - kept.chars().count();
    kept.push(ELLIPSIS);
    (kept, removed)
}

/// Splits `text` (trimmed) into pieces of at most `limit` characters, breaking at a
/// line end, else at a space, in the second half of a piece; a word longer than half a
/// piece is broken mid-word. Only the whitespace at the breaks is lost.
pub(super) fn split(text: &str, limit: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text.trim();
    // More than `limit` characters left (counted no further than needed).
    while rest.char_indices().nth(limit).is_some() {
        let window = &rest[..byte_index(rest, limit)];
        let half = byte_index(window, limit / 2);
        let at = rest[window.len()..]
            .starts_with(char::is_whitespace)
            .then_some(window.len())
            .or_else(|| window[half..].rfind('\n').map(|i| half + i))
            .or_else(|| window[half..].rfind(char::is_whitespace).map(|i| half + i))
            .unwrap_or_else(|| {
                // Mid-word: never between a markdown escape's `\` and what it escapes.
                if ends_in_escape(window) {
                    window
                        .char_indices()
                        .next_back()
                        .map_or(window.len(), |(i, _)| i)
                } else {
                    window.len()
                }
            });
        pieces.push(rest[..at].trim_end().to_owned());
        rest = rest[at..].trim_start();
    }
    if !rest.is_empty() {
        pieces.push(rest.to_owned());
    }
    pieces
}

/// The byte offset of the `n`th character, or the end.
fn byte_index(text: &str, n: usize) -> usize {
    text.char_indices().nth(n).map_or(text.len(), |(i, _)| i)
}

/// Whether `text` ends in an unpaired `\`, which would escape what follows it.
fn ends_in_escape(text: &str) -> bool {
    text.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random Discord markdown: words (some longer than a piece), line breaks, runs of
    /// spaces, non-ASCII text and markdown escapes.
    fn random_text(rng: &mut u64) -> String {
        let mut next = |n: u64| {
            // xorshift64: the cases need spread, not cryptographic quality.
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            *rng % n
        };
        let mut text = String::new();
        for _ in 0..next(300) {
            match next(8) {
                0 => text.push('\n'),
                1 => text.push_str(["\\*", "\\_", "\\\\", "\\`"][next(4) as usize]),
                2 => text.push_str(&"y".repeat(next(120) as usize)),
                3 => text.push_str("émoji 🚀 "),
                4 => text.push_str("   "),
                _ => text.push_str(["**PnL** ", "BTC/USDT ", "+$200.00 ", "a "][next(4) as usize]),
            }
        }
        text
    }

    #[test]
    fn any_text_splits_into_pieces_that_fit_and_lose_only_the_breaks() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for case in 0..500 {
            let text = random_text(&mut rng);
            let limit = 10 + (case % 9) * 25;
            let pieces = split(&text, limit);
            for piece in &pieces {
                assert!(
                    piece.chars().count() <= limit,
                    "case {case}: a piece over {limit}: {piece:?}"
                );
                assert!(!piece.is_empty(), "case {case}: an empty piece");
                assert!(
                    !ends_in_escape(piece),
                    "case {case}: a piece ends in half an escape: {piece:?}"
                );
            }
            // Only white space at the breaks may go.
            let shown = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
            assert_eq!(
                shown(&pieces.concat()),
                shown(&text),
                "case {case}: limit {limit}, text {text:?}"
            );
        }
    }
}
