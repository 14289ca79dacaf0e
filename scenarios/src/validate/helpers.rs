//! Small helpers every part of validation shares: paths into the file (for locating errors)
//! and the text of messages and summaries (hex numbers, lists of names, hidden key bytes).

use crate::locate::PathSeg;

/// A path into the file, from the top-level value.
pub(super) type FilePath = Vec<PathSeg<'static>>;

pub(super) fn child(path: &[PathSeg<'static>], seg: PathSeg<'static>) -> FilePath {
    let mut p = Vec::with_capacity(path.len() + 1);
    p.extend_from_slice(path);
    p.push(seg);
    p
}

pub(super) fn field(path: &[PathSeg<'static>], name: &'static str) -> FilePath {
    child(path, PathSeg::Field(name))
}

pub(super) fn index(path: &[PathSeg<'static>], i: usize) -> FilePath {
    child(path, PathSeg::Index(i))
}

/// `0x7000_0000`: hex in groups of four digits.
pub(super) fn hex(v: u64) -> String {
    let digits = format!("{v:x}");
    let mut out = String::from("0x");
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 4 == 0 {
            out.push('_');
        }
        out.push(d);
    }
    out
}

/// `a`, `b`, `c`: names for an error message.
pub(super) fn quoted_list<T: std::fmt::Display>(names: impl IntoIterator<Item = T>) -> String {
    names
        .into_iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The payload with the values of `key=` and `tweak=` hidden: summaries end up in reports,
/// and key bytes appear in a report only when the user asks (`--reveal-keys`).
pub(super) fn redact_payload(payload: &str) -> String {
    payload
        .split_whitespace()
        .map(|option| match option.split_once('=') {
            Some((name @ ("key" | "tweak"), _)) => format!("{name}=<hidden>"),
            _ => option.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_groups_digits_by_four() {
        assert_eq!(hex(0), "0x0");
        assert_eq!(hex(0x10), "0x10");
        assert_eq!(hex(0x1_0000), "0x1_0000");
        assert_eq!(hex(0x7000_0000), "0x7000_0000");
        assert_eq!(hex(u64::MAX), "0xffff_ffff_ffff_ffff");
    }

    #[test]
    fn summaries_hide_key_bytes() {
        let text = r#"(cores: [(ops: [add_key(key: "k", payload: "type=user algorithm=aes-xts-128 key=000102030405060708090a0b0c0d0e0f tweak=f0e0d0c0b0a090807060504030201000")])])"#;
        let scenario = crate::validate::parse(text, "k.ron").unwrap();
        assert_eq!(
            scenario.ops[0].summary,
            "add_key `k` (type=user algorithm=aes-xts-128 key=<hidden> tweak=<hidden>)"
        );
    }
}
