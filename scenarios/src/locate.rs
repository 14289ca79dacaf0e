//! A small RON locator: finds where a value starts in the text, given its path.
//!
//! Serde forgets where values came from, so validation errors found after deserializing are
//! located by reading the text a second time with this tokenizer. It knows just enough RON to
//! find values: strings (with escapes), raw strings (`r#"..."#`), byte strings, chars, line
//! comments and nested block comments, numbers, identifiers, `( ) [ ] { } , :` and the
//! `#![enable(...)]` attribute. Structure is recorded, types are not.
//!
//! A path is a list of [`PathSeg`]s from the top-level value: `Field("cores")` picks a field of
//! a struct (or of a struct-like enum variant: `load(at: ..)` is a value named `load` whose
//! fields follow), `Index(i)` picks the i-th element of a list or the i-th argument of a tuple
//! or tuple variant (`mispredict([..])`'s list is `Index(0)`). `Some(x)` is looked through, so
//! paths need not know whether the file wrote it.
//!
//! ```
//! use scenarios::locate::{PathSeg, RonIndex};
//! use scenarios::scenario::Location;
//!
//! let text = "(\n  cores: [\n    (ops: [mfence, load(at: virt(0x10))]),\n  ],\n)";
//! let index = RonIndex::new(text);
//! let path = [PathSeg::Field("cores"), PathSeg::Index(0), PathSeg::Field("ops"), PathSeg::Index(1)];
//! assert_eq!(index.locate(&path), Some(Location { line: 3, column: 20 }));
//! ```
//!
//! Columns count characters (as `ron` does), lines and columns are 1-based. The index is built
//! once per text; each lookup then costs the depth of the path. Malformed text never panics:
//! the index holds whatever could be read, and lookups that cannot be answered return `None`.

use crate::scenario::Location;

/// One step of a path into a RON value.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathSeg<'a> {
    /// A struct field (or a struct-like variant's field) by name.
    Field(&'a str),
    /// A list element, or a tuple or tuple variant's argument, by position.
    Index(usize),
}

/// Values nested deeper than this are not indexed (ron itself stops at 128).
const DEPTH_MAX: usize = 512;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    /// `(`, `[`, `{`, `)`, `]`, `}`, `,`, `:`, `#`, `!`.
    Punct(char),
    /// An identifier (raw identifiers without their `r#`).
    Ident(String),
    /// A string, char, number or anything else that is one value.
    Literal,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    at: Location,
    /// The character offset of its first character, and just after its last.
    offset: usize,
    end: usize,
}

/// Splits `text` into tokens; stops at the first thing it cannot read (an unterminated
/// string or comment ends the text).
fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0usize;
    let mut line = 1usize;
    let mut column = 1usize;
    // Advances over chars[i], keeping line and column.
    let step = |i: &mut usize, line: &mut usize, column: &mut usize| {
        if chars.get(*i) == Some(&'\n') {
            *line += 1;
            *column = 1;
        } else {
            *column += 1;
        }
        *i += 1;
    };
    while let Some(&c) = chars.get(i) {
        let at = Location { line, column };
        let start = i;
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            step(&mut i, &mut line, &mut column);
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                step(&mut i, &mut line, &mut column);
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0usize;
            loop {
                match (chars.get(i), chars.get(i + 1)) {
                    (Some('/'), Some('*')) => {
                        depth += 1;
                        step(&mut i, &mut line, &mut column);
                        step(&mut i, &mut line, &mut column);
                    }
                    (Some('*'), Some('/')) => {
                        depth = depth.saturating_sub(1);
                        step(&mut i, &mut line, &mut column);
                        step(&mut i, &mut line, &mut column);
                        if depth == 0 {
                            break;
                        }
                    }
                    (Some(_), _) => step(&mut i, &mut line, &mut column),
                    (None, _) => return out,
                }
            }
        } else if "()[]{},:#!".contains(c) {
            out.push(Token {
                tok: Tok::Punct(c),
                at,
                offset: start,
                end: start + 1,
            });
            step(&mut i, &mut line, &mut column);
        } else if c == '"' {
            if !skip_string(&chars, &mut i, &mut line, &mut column, &step) {
                return out;
            }
            out.push(Token {
                tok: Tok::Literal,
                at,
                offset: start,
                end: i,
            });
        } else if c == '\'' {
            // A char: 'a', '\n', '\u{1F600}', '\''.
            step(&mut i, &mut line, &mut column);
            loop {
                match chars.get(i) {
                    None => return out,
                    Some('\\') => {
                        step(&mut i, &mut line, &mut column);
                        if i < chars.len() {
                            step(&mut i, &mut line, &mut column);
                        }
                    }
                    Some('\'') => {
                        step(&mut i, &mut line, &mut column);
                        break;
                    }
                    Some(_) => step(&mut i, &mut line, &mut column),
                }
            }
            out.push(Token {
                tok: Tok::Literal,
                at,
                offset: start,
                end: i,
            });
        } else if let Some(hashes) = raw_string_start(&chars, i) {
            // r"..", r#".."#, br#".."#: skip the prefix, then to `"` followed by the hashes.
            while chars.get(i) != Some(&'"') {
                step(&mut i, &mut line, &mut column);
            }
            step(&mut i, &mut line, &mut column);
            loop {
                match chars.get(i) {
                    None => return out,
                    Some('"') if (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) => {
                        for _ in 0..=hashes {
                            step(&mut i, &mut line, &mut column);
                        }
                        break;
                    }
                    Some(_) => step(&mut i, &mut line, &mut column),
                }
            }
            out.push(Token {
                tok: Tok::Literal,
                at,
                offset: start,
                end: i,
            });
        } else if c == 'b' && (next == Some('"') || next == Some('\'')) {
            // b"bytes" or b'x': a literal like the string or char that follows.
            step(&mut i, &mut line, &mut column);
            if next == Some('"') {
                if !skip_string(&chars, &mut i, &mut line, &mut column, &step) {
                    return out;
                }
            } else {
                step(&mut i, &mut line, &mut column);
                loop {
                    match chars.get(i) {
                        None => return out,
                        Some('\\') => {
                            step(&mut i, &mut line, &mut column);
                            if i < chars.len() {
                                step(&mut i, &mut line, &mut column);
                            }
                        }
                        Some('\'') => {
                            step(&mut i, &mut line, &mut column);
                            break;
                        }
                        Some(_) => step(&mut i, &mut line, &mut column),
                    }
                }
            }
            out.push(Token {
                tok: Tok::Literal,
                at,
                offset: start,
                end: i,
            });
        } else if c.is_ascii_digit()
            || ((c == '-' || c == '+' || c == '.')
                && next.is_some_and(|n| n.is_ascii_digit() || n == '.' || n.is_alphabetic()))
        {
            // A number: digits, letters (hex, exponents, suffixes, inf, NaN), `_`, `.`, and a
            // sign right after an exponent's `e`.
            let hex = c == '0' && matches!(next, Some('x' | 'X'));
            step(&mut i, &mut line, &mut column);
            while let Some(&d) = chars.get(i) {
                let after_exponent =
                    !hex && matches!(chars.get(i.wrapping_sub(1)), Some('e' | 'E'));
                if d.is_alphanumeric()
                    || d == '_'
                    || d == '.'
                    || ((d == '+' || d == '-') && after_exponent)
                {
                    step(&mut i, &mut line, &mut column);
                } else {
                    break;
                }
            }
            out.push(Token {
                tok: Tok::Literal,
                at,
                offset: start,
                end: i,
            });
        } else if c.is_alphabetic() || c == '_' {
            let mut name = String::new();
            // r#ident
            if c == 'r' && next == Some('#') {
                step(&mut i, &mut line, &mut column);
                step(&mut i, &mut line, &mut column);
            }
            while let Some(&d) = chars.get(i) {
                if d.is_alphanumeric() || d == '_' {
                    name.push(d);
                    step(&mut i, &mut line, &mut column);
                } else {
                    break;
                }
            }
            out.push(Token {
                tok: Tok::Ident(name),
                at,
                offset: start,
                end: i,
            });
        } else {
            // Something RON does not have: stop here.
            return out;
        }
    }
    out
}

/// Skips a `"`-quoted string starting at `chars[*i]`; false when it does not end.
fn skip_string(
    chars: &[char],
    i: &mut usize,
    line: &mut usize,
    column: &mut usize,
    step: &dyn Fn(&mut usize, &mut usize, &mut usize),
) -> bool {
    step(i, line, column);
    loop {
        match chars.get(*i) {
            None => return false,
            Some('\\') => {
                step(i, line, column);
                if *i < chars.len() {
                    step(i, line, column);
                }
            }
            Some('"') => {
                step(i, line, column);
                return true;
            }
            Some(_) => step(i, line, column),
        }
    }
}

/// If a raw string (`r"`, `r#"`, `br##"`) starts at `chars[i]`, its number of `#`s.
fn raw_string_start(chars: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some(hashes)
}

#[derive(Clone, Debug)]
enum Body {
    /// A literal, a unit, a unit variant or `None`.
    Atom,
    /// `(name: value, ...)`, possibly after an identifier.
    Fields(Vec<(String, usize)>),
    /// `(a, b)`, `[a, b]`, `{k: v}` (values only), possibly after an identifier.
    Elements(Vec<usize>),
}

#[derive(Clone, Debug)]
struct Node {
    start: Location,
    /// Character offsets: its first character, and just after its last.
    offset: usize,
    end: usize,
    /// For `( ... )`: the offset just after the `(`.
    open: Option<usize>,
    name: Option<String>,
    body: Body,
}

/// The values of one RON text and where each starts.
#[derive(Clone, Debug, Default)]
pub struct RonIndex {
    nodes: Vec<Node>,
    root: Option<usize>,
}

struct Builder<'t> {
    tokens: &'t [Token],
    pos: usize,
    nodes: Vec<Node>,
}

impl Builder<'_> {
    fn peek(&self, k: usize) -> Option<&Tok> {
        self.tokens.get(self.pos + k).map(|t| &t.tok)
    }

    fn punct(&self, k: usize, c: char) -> bool {
        self.peek(k) == Some(&Tok::Punct(c))
    }

    /// Reads one value; `None` when the text ends or is not RON here.
    fn value(&mut self, depth: usize) -> Option<usize> {
        if depth > DEPTH_MAX {
            return None;
        }
        let token = self.tokens.get(self.pos)?;
        let start = token.at;
        let offset = token.offset;
        match token.tok.clone() {
            Tok::Literal => {
                self.pos += 1;
                Some(self.push(start, offset, None, None, Body::Atom))
            }
            Tok::Ident(name) => {
                self.pos += 1;
                if self.punct(0, '(') {
                    let open = self.tokens[self.pos].end;
                    self.pos += 1;
                    self.paren_body(start, offset, open, Some(name), depth)
                } else {
                    Some(self.push(start, offset, None, Some(name), Body::Atom))
                }
            }
            Tok::Punct('(') => {
                self.pos += 1;
                self.paren_body(start, offset, offset + 1, None, depth)
            }
            Tok::Punct(open @ ('[' | '{')) => {
                self.pos += 1;
                let close = if open == '[' { ']' } else { '}' };
                let mut elements = Vec::new();
                loop {
                    if self.punct(0, close) {
                        self.pos += 1;
                        break;
                    }
                    if open == '{' {
                        // A map entry: skip the key and its colon, index the value.
                        self.value(depth + 1)?;
                        if !self.punct(0, ':') {
                            return None;
                        }
                        self.pos += 1;
                    }
                    elements.push(self.value(depth + 1)?);
                    if self.punct(0, ',') {
                        self.pos += 1;
                    } else if !self.punct(0, close) {
                        return None;
                    }
                }
                Some(self.push(start, offset, None, None, Body::Elements(elements)))
            }
            Tok::Punct(_) => None,
        }
    }

    /// Reads what follows a `(`: struct fields or tuple elements, up to the `)`.
    fn paren_body(
        &mut self,
        start: Location,
        offset: usize,
        open: usize,
        name: Option<String>,
        depth: usize,
    ) -> Option<usize> {
        let is_struct = matches!(self.peek(0), Some(Tok::Ident(_))) && self.punct(1, ':');
        let body = if is_struct {
            let mut fields = Vec::new();
            loop {
                if self.punct(0, ')') {
                    self.pos += 1;
                    break;
                }
                let Some(Tok::Ident(field)) = self.peek(0).cloned() else {
                    return None;
                };
                if !self.punct(1, ':') {
                    return None;
                }
                self.pos += 2;
                fields.push((field, self.value(depth + 1)?));
                if self.punct(0, ',') {
                    self.pos += 1;
                } else if !self.punct(0, ')') {
                    return None;
                }
            }
            Body::Fields(fields)
        } else {
            let mut elements = Vec::new();
            loop {
                if self.punct(0, ')') {
                    self.pos += 1;
                    break;
                }
                elements.push(self.value(depth + 1)?);
                if self.punct(0, ',') {
                    self.pos += 1;
                } else if !self.punct(0, ')') {
                    return None;
                }
            }
            Body::Elements(elements)
        };
        Some(self.push(start, offset, Some(open), name, body))
    }

    /// A node that starts at `start` (`offset`) and ends with the last token read.
    fn push(
        &mut self,
        start: Location,
        offset: usize,
        open: Option<usize>,
        name: Option<String>,
        body: Body,
    ) -> usize {
        let end = self
            .pos
            .checked_sub(1)
            .and_then(|p| self.tokens.get(p))
            .map_or(offset, |t| t.end);
        self.nodes.push(Node {
            start,
            offset,
            end,
            open,
            name,
            body,
        });
        self.nodes.len() - 1
    }
}

impl RonIndex {
    /// Reads `text` once and indexes every value in it.
    pub fn new(text: &str) -> RonIndex {
        let tokens = tokenize(text);
        let mut builder = Builder {
            tokens: &tokens,
            pos: 0,
            nodes: Vec::new(),
        };
        // Inner attributes: #![enable(implicit_some)]
        while builder.punct(0, '#') && builder.punct(1, '!') && builder.punct(2, '[') {
            builder.pos += 3;
            let mut depth = 1usize;
            while depth > 0 {
                match builder.peek(0) {
                    None => break,
                    Some(Tok::Punct('[')) => depth += 1,
                    Some(Tok::Punct(']')) => depth -= 1,
                    Some(_) => {}
                }
                builder.pos += 1;
            }
        }
        let root = builder.value(0);
        RonIndex {
            nodes: builder.nodes,
            root,
        }
    }

    /// Where the value at `path` starts; `None` when the text has no such value.
    pub fn locate(&self, path: &[PathSeg<'_>]) -> Option<Location> {
        let (node, matched) = self.walk(path)?;
        (matched == path.len()).then(|| self.nodes[node].start)
    }

    /// Where the value at `path` starts or, when the text does not have it (a field left to
    /// its default), where its deepest ancestor that the text has starts; the top-level value,
    /// or 1:1, when nothing matches.
    pub fn locate_nearest(&self, path: &[PathSeg<'_>]) -> Location {
        self.walk(path)
            .map_or(Location { line: 1, column: 1 }, |(node, _)| {
                self.nodes[node].start
            })
    }

    /// The deepest node along `path` and how many segments reached it.
    fn walk(&self, path: &[PathSeg<'_>]) -> Option<(usize, usize)> {
        let mut node = self.root?;
        for (matched, seg) in path.iter().enumerate() {
            let inner = self.through_some(node);
            let next = match (&self.nodes[inner].body, seg) {
                (Body::Fields(fields), PathSeg::Field(f)) => {
                    fields.iter().find(|(name, _)| name == f).map(|&(_, n)| n)
                }
                (Body::Elements(elements), PathSeg::Index(i)) => elements.get(*i).copied(),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => return Some((node, matched)),
            }
        }
        Some((node, path.len()))
    }

    /// `Some(x)` is looked through to `x`.
    fn through_some(&self, mut node: usize) -> usize {
        while let Node {
            name: Some(name),
            body: Body::Elements(elements),
            ..
        } = &self.nodes[node]
        {
            match elements.as_slice() {
                [only] if name == "Some" => node = *only,
                _ => break,
            }
        }
        node
    }
}

/// Where a value of a path sits in the text, as [`RonIndex::place_for`] finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// The text has the value: characters `start..end` (character offsets).
    Value {
        /// Its first character.
        start: usize,
        /// Just after its last.
        end: usize,
    },
    /// The text lacks the value from segment `missing` of the path on; its deepest ancestor
    /// the text has is a `( ... )` whose contents start at character `open`: new fields go
    /// there.
    Insert {
        /// Just after the ancestor's `(`.
        open: usize,
        /// How many segments of the path the text has.
        missing: usize,
    },
    /// The deepest ancestor the text has (`depth` segments down) is not a `( ... )`: nothing
    /// can be put inside it.
    NotASection {
        /// How many segments of the path the text has.
        depth: usize,
    },
}

impl RonIndex {
    /// Where the value at `path` is, or where it would go (see [`Place`]); `None` when the
    /// text has no value at all.
    pub fn place_for(&self, path: &[PathSeg<'_>]) -> Option<Place> {
        let (node, matched) = self.walk(path)?;
        let node = self.through_some(node);
        let n = &self.nodes[node];
        if matched == path.len() {
            return Some(Place::Value {
                start: n.offset,
                end: n.end,
            });
        }
        match (n.open, &n.body) {
            (Some(open), Body::Fields(_)) => Some(Place::Insert {
                open,
                missing: matched,
            }),
            (Some(open), Body::Elements(e)) if e.is_empty() => Some(Place::Insert {
                open,
                missing: matched,
            }),
            _ => Some(Place::NotASection { depth: matched }),
        }
    }
}

/// Where the value at `path` starts in `text` (building an index for one lookup).
pub fn locate(text: &str, path: &[PathSeg<'_>]) -> Option<Location> {
    RonIndex::new(text).locate(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use PathSeg::{Field, Index};

    fn at(line: usize, column: usize) -> Option<Location> {
        Some(Location { line, column })
    }

    #[test]
    fn fields_lists_and_variants() {
        let text = "(\n  a: 1,\n  b: [x, y(1, 2), z(f: \"s\")],\n)";
        assert_eq!(locate(text, &[]), at(1, 1));
        assert_eq!(locate(text, &[Field("a")]), at(2, 6));
        assert_eq!(locate(text, &[Field("b")]), at(3, 6));
        assert_eq!(locate(text, &[Field("b"), Index(1)]), at(3, 10));
        assert_eq!(locate(text, &[Field("b"), Index(1), Index(1)]), at(3, 15));
        assert_eq!(locate(text, &[Field("b"), Index(2), Field("f")]), at(3, 24));
        assert_eq!(locate(text, &[Field("c")]), None);
        assert_eq!(locate(text, &[Field("b"), Index(3)]), None);
    }

    #[test]
    fn comments_and_strings_hide_brackets() {
        let text = "( // a: (\n /* b: [ /* nested ) */ still comment ] */ a: \"(,]\\\"\", \
                    b: r#\"a \" ( \"#, c: '(', d: b\"]\", e: 5 )";
        assert_eq!(locate(text, &[Field("a")]), at(2, 47));
        assert_eq!(locate(text, &[Field("e")]), at(2, 92));
        assert!(locate(text, &[Field("d")]).is_some());
    }

    #[test]
    fn some_is_looked_through() {
        let text = "(a: Some((b: 1)), c: Some([4, 5]))";
        assert_eq!(locate(text, &[Field("a"), Field("b")]), at(1, 14));
        assert_eq!(locate(text, &[Field("c"), Index(1)]), at(1, 31));
    }

    #[test]
    fn nearest_falls_back_to_the_deepest_ancestor() {
        let index = RonIndex::new("(\n  kernel: (keyids: 3),\n)");
        let path = [Field("kernel"), Field("frames"), Field("base")];
        assert_eq!(index.locate(&path), None);
        assert_eq!(
            index.locate_nearest(&path),
            Location {
                line: 2,
                column: 11
            }
        );
        assert_eq!(
            RonIndex::new("").locate_nearest(&path),
            Location { line: 1, column: 1 }
        );
    }

    #[test]
    fn columns_count_characters() {
        let text = "(s: \"é—ü\", n: -1.5e-3, h: 0x1F_u8, t: 1)";
        assert_eq!(locate(text, &[Field("n")]), at(1, 15));
        assert_eq!(locate(text, &[Field("t")]), at(1, 39));
    }

    #[test]
    fn attributes_are_skipped() {
        let text = "#![enable(implicit_some)]\n(x: 1)";
        assert_eq!(locate(text, &[Field("x")]), at(2, 5));
    }

    #[test]
    fn malformed_text_never_panics() {
        for text in [
            "(",
            "(a: ",
            "\"unterminated",
            "/* open",
            "(a: [1, 2",
            "'",
            "r#\"x",
            ")))",
            "(a: 1 b: 2)",
        ] {
            let index = RonIndex::new(text);
            let _ = index.locate(&[Field("a"), Index(3)]);
            let _ = index.locate_nearest(&[Field("a")]);
        }
    }
}
