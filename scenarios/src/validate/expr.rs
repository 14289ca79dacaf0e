//! Integer expressions in addresses and data: `"0x10000 + 64*i"`, where `i` is the `index` of
//! an enclosing `repeat` (0 in its first iteration, `times - 1` in its last).
//!
//! An expression is affine in the indices: numbers (decimal or `0x` hex, `_` allowed), index
//! names, `+`, `-`, `*` (one side a constant), unary `-` and parentheses. Being affine, its
//! smallest and largest values over every iteration are found exactly from the ends of each
//! index's range, so validation checks the whole range of a loop (an address past DRAM, a
//! KeyID beyond the machine's bits, a value too wide for `u8`) without unrolling it, and the
//! core computes each iteration's value as `base + Σ step × index` from its repeat counters.

use std::fmt::Write;

/// Magnitudes beyond this are refused (far beyond any address or value, far inside `i128`).
const MAGNITUDE_MAX: i128 = 1 << 100;

/// An index in scope: the `index` of an enclosing repeat.
#[derive(Clone, Debug)]
pub(super) struct IndexVar {
    /// Its name.
    pub(super) name: String,
    /// Iterations of its repeat: it takes the values `0..times`.
    pub(super) times: u64,
    /// Its repeat op's tag (how the core finds the iteration).
    pub(super) tag: u32,
}

/// `constant + Σ coefficient × index`, indices by their place in the scope.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(super) struct Affine {
    pub(super) constant: i128,
    /// (index slot, coefficient), slots ascending, no zero coefficient.
    pub(super) terms: Vec<(usize, i128)>,
}

impl Affine {
    fn constant(c: i128) -> Affine {
        Affine {
            constant: c,
            terms: Vec::new(),
        }
    }

    fn is_constant(&self) -> bool {
        self.terms.is_empty()
    }

    fn add(mut self, other: &Affine, sign: i128) -> Result<Affine, String> {
        self.constant = bounded(self.constant + sign * other.constant)?;
        for &(slot, c) in &other.terms {
            match self.terms.iter_mut().find(|(s, _)| *s == slot) {
                Some((_, mine)) => *mine = bounded(*mine + sign * c)?,
                None => self.terms.push((slot, sign * c)),
            }
        }
        self.terms.retain(|(_, c)| *c != 0);
        self.terms.sort_unstable();
        Ok(self)
    }

    fn scale(mut self, k: i128) -> Result<Affine, String> {
        self.constant = bounded(
            self.constant
                .checked_mul(k)
                .ok_or_else(|| "a value too large".to_owned())?,
        )?;
        for (_, c) in &mut self.terms {
            *c = bounded(
                c.checked_mul(k)
                    .ok_or_else(|| "a value too large".to_owned())?,
            )?;
        }
        self.terms.retain(|(_, c)| *c != 0);
        Ok(self)
    }

    /// Whether some enclosing repeat the expression depends on never runs (then neither does
    /// the op, and no value needs checking).
    pub(super) fn never_runs(&self, scope: &[IndexVar]) -> bool {
        scope.iter().any(|v| v.times == 0)
    }

    /// The smallest and the largest value over every iteration, each with the index values
    /// that give it (for messages). Call only when the op runs.
    pub(super) fn range(&self, scope: &[IndexVar]) -> ((i128, String), (i128, String)) {
        let (mut lo, mut hi) = (self.constant, self.constant);
        let (mut at_lo, mut at_hi) = (Vec::new(), Vec::new());
        for &(slot, c) in &self.terms {
            let last = i128::from(scope[slot].times.saturating_sub(1));
            let name = &scope[slot].name;
            // Saturating: a value that large fails its range check anyway.
            let reach = c.saturating_mul(last);
            if c > 0 {
                hi = hi.saturating_add(reach);
                at_hi.push(format!("{name} = {last}"));
                at_lo.push(format!("{name} = 0"));
            } else {
                lo = lo.saturating_add(reach);
                at_lo.push(format!("{name} = {last}"));
                at_hi.push(format!("{name} = 0"));
            }
        }
        ((lo, at_lo.join(", ")), (hi, at_hi.join(", ")))
    }
}

fn bounded(v: i128) -> Result<i128, String> {
    if v.abs() > MAGNITUDE_MAX {
        Err("a value too large".to_owned())
    } else {
        Ok(v)
    }
}

/// Parses `text` with the indices of `scope` (innermost last) as names.
pub(super) fn parse(text: &str, scope: &[IndexVar]) -> Result<Affine, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut p = Parser {
        chars: &chars,
        pos: 0,
        scope,
    };
    let value = p.expr()?;
    p.skip_blanks();
    if let Some(c) = p.chars.get(p.pos) {
        return Err(format!(
            "{c:?} at character {}: expected `+`, `-`, `*` or the end of the expression",
            p.pos + 1
        ));
    }
    Ok(value)
}

struct Parser<'a> {
    chars: &'a [char],
    pos: usize,
    scope: &'a [IndexVar],
}

impl Parser<'_> {
    fn skip_blanks(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_blanks();
        self.chars.get(self.pos).copied()
    }

    fn expr(&mut self) -> Result<Affine, String> {
        let mut value = self.term()?;
        loop {
            let sign = match self.peek() {
                Some('+') => 1,
                Some('-') => -1,
                _ => return Ok(value),
            };
            self.pos += 1;
            let rhs = self.term()?;
            value = value.add(&rhs, sign)?;
        }
    }

    fn term(&mut self) -> Result<Affine, String> {
        let mut value = self.unary()?;
        while self.peek() == Some('*') {
            let at = self.pos + 1;
            self.pos += 1;
            let rhs = self.unary()?;
            value = match (value.is_constant(), rhs.is_constant()) {
                (_, true) => value.scale(rhs.constant)?,
                (true, false) => rhs.scale(value.constant)?,
                (false, false) => {
                    return Err(format!(
                        "`*` at character {at} multiplies two indices: expected one side a \
                         number (expressions are affine: steps, not products of indices)"
                    ));
                }
            };
        }
        Ok(value)
    }

    fn unary(&mut self) -> Result<Affine, String> {
        if self.peek() == Some('-') {
            self.pos += 1;
            return self.unary()?.scale(-1);
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Affine, String> {
        let Some(c) = self.peek() else {
            return Err("the expression ends early: expected a number, an index or `(`".to_owned());
        };
        let start = self.pos;
        if c == '(' {
            self.pos += 1;
            let value = self.expr()?;
            if self.peek() != Some(')') {
                return Err(format!(
                    "`(` at character {} is not closed: expected `)`",
                    start + 1
                ));
            }
            self.pos += 1;
            return Ok(value);
        }
        let word: String = self.chars[start..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
            .collect();
        if word.is_empty() {
            return Err(format!(
                "{c:?} at character {}: expected a number, an index or `(`",
                start + 1
            ));
        }
        self.pos += word.chars().count();
        if c.is_ascii_digit() {
            return number(&word)
                .map(Affine::constant)
                .map_err(|e| format!("`{word}` at character {}: {e}", start + 1));
        }
        match self.scope.iter().rposition(|v| v.name == word) {
            Some(slot) => Ok(Affine {
                constant: 0,
                terms: vec![(slot, 1)],
            }),
            None => {
                let mut known = String::new();
                for (k, v) in self.scope.iter().enumerate() {
                    let _ = write!(known, "{}`{}`", if k > 0 { ", " } else { "" }, v.name);
                }
                Err(if known.is_empty() {
                    format!(
                        "`{word}` is not an index: no enclosing repeat has one (give it \
                         `index: \"{word}\"`)"
                    )
                } else {
                    format!("`{word}` is not an index; the enclosing repeats' indices: {known}")
                })
            }
        }
    }
}

/// A decimal or `0x` hex number, `_` allowed between digits.
fn number(word: &str) -> Result<i128, String> {
    let (digits, radix) = match word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (word, 10),
    };
    let digits: String = digits.chars().filter(|c| *c != '_').collect();
    if digits.is_empty() {
        return Err("no digits".to_owned());
    }
    let v = u128::from_str_radix(&digits, radix).map_err(|_| {
        if radix == 16 {
            "not a hex number".to_owned()
        } else {
            "not a number (hex needs `0x`)".to_owned()
        }
    })?;
    i128::try_from(v)
        .ok()
        .filter(|v| *v <= MAGNITUDE_MAX)
        .ok_or_else(|| "too large".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Vec<IndexVar> {
        vec![
            IndexVar {
                name: "i".into(),
                times: 4096,
                tag: 3,
            },
            IndexVar {
                name: "j".into(),
                times: 4,
                tag: 7,
            },
        ]
    }

    fn affine(constant: i128, terms: &[(usize, i128)]) -> Affine {
        Affine {
            constant,
            terms: terms.to_vec(),
        }
    }

    #[test]
    fn affine_forms() {
        let s = scope();
        assert_eq!(
            parse("0x10000 + 64*i", &s).unwrap(),
            affine(0x10000, &[(0, 64)])
        );
        assert_eq!(parse("0x1_0000", &s).unwrap(), affine(0x10000, &[]));
        assert_eq!(
            parse(" (i + 2) * 4096 - 8*j + i ", &s).unwrap(),
            affine(8192, &[(0, 4097), (1, -8)])
        );
        assert_eq!(parse("-(-i)", &s).unwrap(), affine(0, &[(0, 1)]));
        assert_eq!(parse("i - i + 5", &s).unwrap(), affine(5, &[]));
        assert_eq!(parse("2*3*j", &s).unwrap(), affine(0, &[(1, 6)]));
    }

    #[test]
    fn ranges_are_exact() {
        let s = scope();
        let ((lo, at_lo), (hi, at_hi)) = parse("100 + 64*i - 8*j", &s).unwrap().range(&s);
        assert_eq!((lo, hi), (100 - 24, 100 + 64 * 4095));
        assert_eq!(at_hi, "i = 4095, j = 0");
        assert_eq!(at_lo, "i = 0, j = 3");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let s = scope();
        let e = |t: &str| parse(t, &s).unwrap_err();
        assert_eq!(
            e("i*j"),
            "`*` at character 2 multiplies two indices: expected one side a number (expressions are affine: steps, not products of indices)"
        );
        assert_eq!(
            e("k + 1"),
            "`k` is not an index; the enclosing repeats' indices: `i`, `j`"
        );
        assert_eq!(
            parse("k", &[]).unwrap_err(),
            "`k` is not an index: no enclosing repeat has one (give it `index: \"k\"`)"
        );
        assert_eq!(
            e("1 +"),
            "the expression ends early: expected a number, an index or `(`"
        );
        assert_eq!(
            e("(1 + i"),
            "`(` at character 1 is not closed: expected `)`"
        );
        assert_eq!(
            e("1 2"),
            "'2' at character 3: expected `+`, `-`, `*` or the end of the expression"
        );
        assert_eq!(
            e("12ab"),
            "`12ab` at character 1: not a number (hex needs `0x`)"
        );
        assert_eq!(e("0xfg"), "`0xfg` at character 1: not a hex number");
        assert_eq!(
            e("1 / 2"),
            "'/' at character 3: expected `+`, `-`, `*` or the end of the expression"
        );
        assert_eq!(
            e("0xffffffffffffffffffffffffffffffff"),
            "`0xffffffffffffffffffffffffffffffff` at character 1: too large"
        );
        assert_eq!(
            e("0x1000000000000000000000000 * 0x100000"),
            "a value too large"
        );
    }
}
