//! A rough reading of RON text, enough for structure-aware mutations: where the numbers,
//! names, quoted strings and lists are. It never fails: text that is not RON (a mutant) gives
//! whatever it gives, brackets that do not match are skipped.

use std::ops::Range;

/// Where things are in a text.
#[derive(Default, Debug)]
pub struct Shape {
    /// Number literals (`64`, `0x40_000`, `1e5`).
    pub numbers: Vec<Range<usize>>,
    /// Bare names (`store`, `cycles_max`, `lru`).
    pub names: Vec<Range<usize>>,
    /// The insides of quoted strings.
    pub strings: Vec<Range<usize>>,
    /// Lists: the elements of each `[...]`, trimmed of blanks.
    pub lists: Vec<Vec<Range<usize>>>,
    /// Just after each `(`.
    pub opens: Vec<usize>,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Reads `text`'s shape.
pub fn shape(text: &[u8]) -> Shape {
    let mut s = Shape::default();
    // Open brackets: the byte, and for a `[`, where its current element starts and its
    // elements so far.
    let mut stack: Vec<(u8, usize, Vec<Range<usize>>)> = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        let prev_word = i > 0 && (is_word(text[i - 1]) || text[i - 1] == b'.');
        match b {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                s.strings.push(start..i.min(text.len()));
            }
            b'/' if text.get(i + 1) == Some(&b'/') => {
                while i < text.len() && text[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if text.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < text.len() && !(text[i] == b'*' && text[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'0'..=b'9' if !prev_word => {
                let start = i;
                while i < text.len() && (is_word(text[i]) || text[i] == b'.') {
                    i += 1;
                }
                s.numbers.push(start..i);
                continue;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' if !prev_word => {
                let start = i;
                while i < text.len() && is_word(text[i]) {
                    i += 1;
                }
                s.names.push(start..i);
                continue;
            }
            b'(' => {
                s.opens.push(i + 1);
                stack.push((b'(', i + 1, Vec::new()));
            }
            b'[' => stack.push((b'[', i + 1, Vec::new())),
            b',' => {
                if let Some((b'[', start, elements)) = stack.last_mut() {
                    push_trimmed(text, elements, *start..i);
                    *start = i + 1;
                }
            }
            b')' | b']' => {
                let open = if b == b')' { b'(' } else { b'[' };
                if let Some(depth) = stack.iter().rposition(|(o, _, _)| *o == open) {
                    stack.truncate(depth + 1);
                    let (_, start, mut elements) = stack.pop().expect("found above");
                    if open == b'[' {
                        push_trimmed(text, &mut elements, start..i);
                        s.lists.push(elements);
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    s
}

/// Adds the range, trimmed of blanks, unless it is blank.
fn push_trimmed(text: &[u8], elements: &mut Vec<Range<usize>>, mut r: Range<usize>) {
    while r.start < r.end && text[r.start].is_ascii_whitespace() {
        r.start += 1;
    }
    while r.end > r.start && text[r.end - 1].is_ascii_whitespace() {
        r.end -= 1;
    }
    if !r.is_empty() {
        elements.push(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_names_strings_and_lists() {
        let text = br#"(a: 0x40, l1d: (size: "48k"), ops: [load(x: 1), mfence, ] // 9
        )"#;
        let s = shape(text);
        let at = |r: &Range<usize>| std::str::from_utf8(&text[r.clone()]).unwrap();
        assert_eq!(s.numbers.iter().map(at).collect::<Vec<_>>(), ["0x40", "1"]);
        assert_eq!(
            s.names.iter().map(at).collect::<Vec<_>>(),
            ["a", "l1d", "size", "ops", "load", "x", "mfence"]
        );
        assert_eq!(s.strings.iter().map(at).collect::<Vec<_>>(), ["48k"]);
        assert_eq!(s.lists.len(), 1);
        assert_eq!(
            s.lists[0].iter().map(at).collect::<Vec<_>>(),
            ["load(x: 1)", "mfence"]
        );
        assert_eq!(s.opens.len(), 3);
    }

    #[test]
    fn survives_text_that_is_not_ron() {
        for text in [&b"]]))[[(\"\\"[..], b"/*", b"\"", b"0x", b"[,,,]"] {
            let _ = shape(text);
        }
    }
}
