//! Telegram's splitter and its HTML reader: any text, in any markup, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use telegram::config::Markup;
use telegram::format::{Limits, html_to_plain, split, visible_len};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = Limits {
        chars: 64,
        bytes: 512,
    };
    for markup in [Markup::Html, Markup::MarkdownV2, Markup::Plain] {
        let _ = visible_len(text, markup);
        let _ = split(text, markup, limits);
    }
    let _ = html_to_plain(text);
});
