//! Byte-level number parsing shared by the text formats: no allocation, no UTF-8 decoding, no
//! regular expressions, and overflow detected rather than wrapped.

/// Why a field did not parse. `None` in a parser's error means "not the expected shape" with
/// nothing more specific to say.
pub(crate) type Reason = Option<&'static str>;

/// Value of each byte as a hex digit, or `0xff`.
pub(crate) static HEX_DIGIT: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// True for the blank bytes allowed between and after fields (`\r` so that CRLF files read).
#[inline(always)]
pub(crate) const fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r')
}

/// Index of the first non-blank byte at or after `i`.
#[inline(always)]
pub(crate) fn skip_blanks(line: &[u8], mut i: usize) -> usize {
    while i < line.len() && is_blank(line[i]) {
        i += 1;
    }
    i
}

/// Why a number did not parse.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(crate) enum NumError {
    /// No digit where the number should start.
    Missing,
    /// More than the type holds.
    Overflow,
}

/// True when all eight bytes of `word` are hex digits: byte-range tests on the whole word
/// at once (Hacker's Delight 6-1 style), with no branch per byte.
#[inline(always)]
pub(crate) const fn all_hex(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const LOWS7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // For a byte b below 0x80, b + (0x80 - lo) has its high bit set iff b >= lo, and
    // b + (0x7f - hi) iff b > hi; neither sum carries into the next byte.
    let b7 = word & LOWS7;
    let digit = (b7 + ONES * (0x80 - 0x30)) & !(b7 + ONES * (0x7f - 0x39));
    // Setting bit 5 folds 'A'-'F' onto 'a'-'f' and nothing else onto them.
    let l7 = (word | (ONES * 0x20)) & LOWS7;
    let letter = (l7 + ONES * (0x80 - 0x61)) & !(l7 + ONES * (0x7f - 0x66));
    ((digit | letter) & !word & HIGHS) == HIGHS
}

/// The value of eight hex digits (checked by [`all_hex`]), the first in the lowest byte: each
/// byte becomes its nibble ('0'-'9' have bit 6 clear, letters set and 9 below their value in
/// the low nibble), then neighbouring nibbles, bytes and halves are packed together.
#[inline(always)]
pub(crate) const fn eight_hex_digits(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let nibbles = (word & (ONES * 0x0f)) + ((word >> 6) & ONES) * 9;
    // The first digit is the most significant: put it in the top byte.
    let v = nibbles.swap_bytes();
    let v = (v | (v >> 4)) & 0x00ff_00ff_00ff_00ff;
    let v = (v | (v >> 8)) & 0x0000_ffff_0000_ffff;
    (v | (v >> 16)) & 0x0000_0000_ffff_ffff
}

/// Parses the hex digits starting at `i`; returns the value and the index after them.
///
/// Addresses in real traces have 8 to 12 digits. When the first eight bytes are all hex
/// digits ([`all_hex`]), they are converted without a branch per digit; the rest, and short
/// fields, go digit by digit.
#[inline(always)]
pub(crate) fn hex_u64(line: &[u8], mut i: usize) -> Result<(u64, usize), NumError> {
    let start = i;
    let mut value = 0u64;
    if let Some(word) = line.get(i..i + 8) {
        let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        if all_hex(word) {
            value = eight_hex_digits(word);
            i += 8;
        }
    }
    while i < line.len() {
        let d = HEX_DIGIT[line[i] as usize];
        if d == 0xff {
            break;
        }
        if value >> 60 != 0 {
            return Err(NumError::Overflow);
        }
        value = (value << 4) | u64::from(d);
        i += 1;
    }
    if i == start {
        return Err(NumError::Missing);
    }
    Ok((value, i))
}

/// Parses the decimal digits starting at `i` as a `u32`; returns the value and the index
/// after them.
#[inline(always)]
pub(crate) fn dec_u32(line: &[u8], mut i: usize) -> Result<(u32, usize), NumError> {
    let start = i;
    let mut value = 0u64;
    while i < line.len() && line[i].is_ascii_digit() {
        value = value * 10 + u64::from(line[i] - b'0');
        if value > u64::from(u32::MAX) {
            return Err(NumError::Overflow);
        }
        i += 1;
    }
    if i == start {
        return Err(NumError::Missing);
    }
    Ok((value as u32, i))
}

/// Checks the size of an access: at least one byte, and no byte past the end of the 64-bit
/// address space.
#[inline(always)]
pub(crate) fn check_extent(addr: u64, size: u32) -> Result<(), Reason> {
    if size == 0 {
        return Err(Some("the size must be at least 1"));
    }
    if addr.checked_add(u64::from(size) - 1).is_none() {
        return Err(Some(
            "the access runs past the end of the 64-bit address space",
        ));
    }
    Ok(())
}

/// The offending line as it goes into an error message: at most 80 characters, invalid UTF-8
/// replaced, control characters and quotes escaped, trailing blanks dropped.
pub(crate) fn shown(line: &[u8]) -> String {
    const MAX_CHARS: usize = 80;
    let mut end = line.len();
    while end > 0 && is_blank(line[end - 1]) {
        end -= 1;
    }
    let text = String::from_utf8_lossy(&line[..end]);
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == MAX_CHARS {
            out.push_str("...");
            break;
        }
        out.extend(c.escape_debug());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digits_and_overflow() {
        assert_eq!(hex_u64(b"ff,", 0), Ok((0xff, 2)));
        assert_eq!(hex_u64(b"x0ABcdEf", 1), Ok((0xabcdef, 8)));
        assert_eq!(hex_u64(b"ffffffffffffffff", 0), Ok((u64::MAX, 16)));
        // Leading zeros do not count against the 64 bits.
        assert_eq!(hex_u64(b"0000ffffffffffffffff", 0), Ok((u64::MAX, 20)));
        assert_eq!(hex_u64(b"1ffffffffffffffff", 0), Err(NumError::Overflow));
        assert_eq!(hex_u64(b"g", 0), Err(NumError::Missing));
        assert_eq!(hex_u64(b"", 0), Err(NumError::Missing));
    }

    #[test]
    fn all_hex_agrees_with_a_byte_test_for_every_byte_in_every_position() {
        for pos in 0..8 {
            for b in 0..=255u8 {
                let mut bytes = *b"0aF9cE17";
                bytes[pos] = b;
                assert_eq!(
                    all_hex(u64::from_le_bytes(bytes)),
                    b.is_ascii_hexdigit(),
                    "byte {b:#x} at {pos}"
                );
            }
        }
        assert!(all_hex(u64::from_le_bytes(*b"fFfF0909")));
    }

    #[test]
    fn eight_hex_digits_reads_every_digit_in_every_place() {
        for pos in 0..8 {
            for &b in b"0123456789abcdefABCDEF" {
                let mut bytes = *b"1f0A9e3C";
                bytes[pos] = b;
                let text = std::str::from_utf8(&bytes).unwrap();
                assert_eq!(
                    eight_hex_digits(u64::from_le_bytes(bytes)),
                    u64::from_str_radix(text, 16).unwrap(),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn hex_fields_of_every_length_and_position() {
        // Against u64::from_str_radix over every length (across the 8-digit fast path), in
        // several positions, followed by nothing or by a separator.
        let digits = b"0123456789abcdefABCDEF";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 1..=24 {
            for start in 0..3 {
                for tail in ["", ",", ",8", " 4", "\n"] {
                    let mut line = vec![b' '; start];
                    for _ in 0..len {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        line.push(digits[(seed % 22) as usize]);
                    }
                    let text = String::from_utf8(line[start..].to_vec()).unwrap();
                    line.extend_from_slice(tail.as_bytes());
                    let want = match u64::from_str_radix(&text, 16) {
                        Ok(v) => Ok((v, start + len)),
                        Err(_) => Err(NumError::Overflow),
                    };
                    assert_eq!(hex_u64(&line, start), want, "{text}{tail}");
                }
            }
        }
    }

    #[test]
    fn decimal_digits_and_overflow() {
        assert_eq!(dec_u32(b"8\n", 0), Ok((8, 1)));
        assert_eq!(dec_u32(b"4294967295", 0), Ok((u32::MAX, 10)));
        assert_eq!(dec_u32(b"4294967296", 0), Err(NumError::Overflow));
        assert_eq!(dec_u32(b"-1", 0), Err(NumError::Missing));
    }

    #[test]
    fn extents() {
        assert!(check_extent(u64::MAX, 1).is_ok());
        assert!(check_extent(u64::MAX - 7, 8).is_ok());
        assert!(check_extent(u64::MAX - 6, 8).is_err());
        assert_eq!(check_extent(0, 0), Err(Some("the size must be at least 1")));
    }

    #[test]
    fn shown_lines_are_escaped_and_cut() {
        assert_eq!(shown(b"Q 0x10 8\r"), "Q 0x10 8");
        assert_eq!(shown(b"a\"b\x01"), "a\\\"b\\u{1}");
        assert_eq!(shown(&[b'x'; 100]), format!("{}...", "x".repeat(80)));
        assert_eq!(shown(b"\xff"), "\u{fffd}");
    }
}
