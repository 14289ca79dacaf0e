//! User text inside messages: escaped and cut, so that what a user wrote (a name, a path, a
//! field ron could not read) cannot forge lines of output, move the terminal's cursor or fill a
//! screen.
//!
//! Messages are one line each (`file:line:column: message`), and tools read them line by line.
//! A name holding a newline would forge a second `file:line:column:` line; one holding an
//! escape sequence would reach the terminal; a name of 4 MiB would come back whole. Every
//! message that echoes what a user wrote passes it through [`shown`] (or the whole message
//! through [`one_line`]): control and invisible formatting characters become escapes (`\n`,
//! `\u{1b}`), and text longer than a screen's worth is cut, saying how much was left out.
//!
//! ```
//! use sim_core::text::{one_line, shown};
//!
//! assert_eq!(shown("r1"), "r1");
//! assert_eq!(shown("a\nx.ron:1:1: forged"), "a\\nx.ron:1:1: forged");
//! assert_eq!(shown("\u{1b}[2J"), "\\u{1b}[2J");
//! let long = "n".repeat(1000);
//! assert_eq!(shown(&long), format!("{}…(+936 bytes)", "n".repeat(64)));
//! assert_eq!(
//!     one_line(&format!("no op labelled `{long}`\nforged")),
//!     format!("no op labelled `{}…(+936 bytes)`\\nforged", "n".repeat(64)),
//! );
//! ```

use std::borrow::Cow;
use std::fmt::Write;

/// Characters of user text [`shown`] keeps; the rest is cut.
pub const SHOWN_CHARS_MAX: usize = 64;

/// Characters [`one_line`] keeps of a whole message.
pub const MESSAGE_CHARS_MAX: usize = 2000;

/// True for characters that must not reach a terminal as they are: control characters and the
/// invisible ones that reorder or hide text (bidirectional overrides, zero-width characters).
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// Appends `c`, escaped if [`hidden`].
fn push_escaped(out: &mut String, c: char) {
    if !hidden(c) {
        out.push(c);
        return;
    }
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        _ => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

/// `text` with control and invisible characters escaped, cut after [`SHOWN_CHARS_MAX`]
/// characters (`…(+N bytes)` says how much was left out). Borrowed when nothing changes.
pub fn shown(text: &str) -> Cow<'_, str> {
    shown_max(text, SHOWN_CHARS_MAX)
}

/// [`shown`], keeping up to `max_chars` characters (for paths, which may be long).
pub fn shown_max(text: &str, max_chars: usize) -> Cow<'_, str> {
    let cut = text.char_indices().nth(max_chars).map(|(i, _)| i);
    if cut.is_none() && !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let kept = &text[..cut.unwrap_or(text.len())];
    let mut out = String::with_capacity(kept.len() + 16);
    for c in kept.chars() {
        push_escaped(&mut out, c);
    }
    if let Some(cut) = cut {
        let _ = write!(out, "…(+{} bytes)", text.len() - cut);
    }
    Cow::Owned(out)
}

/// A whole message made safe to print as one line: control and invisible characters escaped,
/// every `` `quoted` `` or `"quoted"` stretch longer than [`SHOWN_CHARS_MAX`] characters cut
/// (the user text ron and serde put in their messages is quoted so), and the whole cut after
/// [`MESSAGE_CHARS_MAX`] characters. Borrowed when nothing changes.
pub fn one_line(message: &str) -> Cow<'_, str> {
    let long = message.len() > SHOWN_CHARS_MAX;
    if !long && !message.chars().any(hidden) {
        return Cow::Borrowed(message);
    }
    let mut out = String::with_capacity(message.len().min(4 * MESSAGE_CHARS_MAX));
    // The quote character of the stretch being read, and the characters read in it.
    let mut quote: Option<char> = None;
    let mut quoted_chars = 0usize;
    let mut skipped_bytes = 0usize;
    let mut chars_out = 0usize;
    for c in message.chars() {
        match quote {
            Some(q) if c == q => {
                if skipped_bytes > 0 {
                    let _ = write!(out, "…(+{skipped_bytes} bytes)");
                    skipped_bytes = 0;
                }
                quote = None;
            }
            Some(_) => {
                quoted_chars += 1;
                if quoted_chars > SHOWN_CHARS_MAX {
                    skipped_bytes += c.len_utf8();
                    continue;
                }
            }
            None if c == '`' || c == '"' => {
                quote = Some(c);
                quoted_chars = 0;
            }
            None => {}
        }
        if chars_out >= MESSAGE_CHARS_MAX {
            out.push('…');
            return Cow::Owned(out);
        }
        push_escaped(&mut out, c);
        chars_out += 1;
    }
    if skipped_bytes > 0 {
        let _ = write!(out, "…(+{skipped_bytes} bytes)");
    }
    if out == message {
        Cow::Borrowed(message)
    } else {
        Cow::Owned(out)
    }
}

/// Text of several lines made safe for a terminal (a summary, or a message that carries a
/// dump of state below its first line): control and invisible characters escaped, but the
/// newlines between lines kept and nothing cut. Borrowed when nothing changes.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && hidden(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c == '\n' {
            out.push(c);
        } else {
            push_escaped(&mut out, c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(shown("label r1"), Cow::Borrowed(_)));
        let message = "x.ron:1:45: load len 65 is outside 1..=64; core 0 has no op labelled `r2`";
        assert!(matches!(one_line(message), Cow::Borrowed(_)));
    }

    #[test]
    fn controls_and_invisible_characters_are_escaped() {
        assert_eq!(shown("a\r\n\tb"), "a\\r\\n\\tb");
        assert_eq!(
            shown("\u{7f}\u{202e}x\u{feff}"),
            "\\u{7f}\\u{202e}x\\u{feff}"
        );
        // Printable text stays, quotes and backslashes included.
        assert_eq!(shown("é—ü `\"\\"), "é—ü `\"\\");
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let text = "é".repeat(100);
        assert_eq!(shown(&text), format!("{}…(+72 bytes)", "é".repeat(64)));
        assert_eq!(shown_max(&text, 100), text);
    }

    #[test]
    fn long_quoted_stretches_are_cut_and_the_message_stays_one_line() {
        let name = "x".repeat(5000);
        let message = format!("a `{name}` and \"{name}\" end\nx.ron:9:9: forged");
        let expected = format!(
            "a `{x}…(+4936 bytes)` and \"{x}…(+4936 bytes)\" end\\nx.ron:9:9: forged",
            x = "x".repeat(64)
        );
        assert_eq!(one_line(&message), expected);
        // An unterminated quote is cut all the same.
        let open = format!("field `{name}");
        assert_eq!(
            one_line(&open),
            format!("field `{}…(+4936 bytes)", "x".repeat(64))
        );
    }

    #[test]
    fn printable_text_keeps_its_lines() {
        let dump = "stopped at cycle 9; state:\n  core 0: waiting\n";
        assert!(matches!(printable(dump), Cow::Borrowed(_)));
        assert_eq!(printable("a\u{1b}[31m\n\tb\r"), "a\\u{1b}[31m\n\\tb\\r");
    }

    #[test]
    fn a_long_message_is_cut() {
        let message = "word ".repeat(1000);
        let shown = one_line(&message);
        assert_eq!(shown.chars().count(), MESSAGE_CHARS_MAX + 1);
        assert!(shown.ends_with('…'));
    }
}
