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
//! on the first lookup, not before: a valid file is never indexed, and an invalid one only to
//! place its error. Building it reads the text once, token by token, and keeps a few dozen
//! bytes per value (names are kept as places in the text); each lookup then costs the depth of
//! the path. Malformed text never panics: the index holds whatever could be read, and lookups
//! that cannot be answered return `None`.

use crate::scenario::Location;
use std::cell::OnceCell;
use std::collections::VecDeque;

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

/// "None" in the index's `u32` fields.
const NONE: u32 = u32::MAX;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Tok {
    /// `(`, `[`, `{`, `)`, `]`, `}`, `,`, `:`, `#`, `!`.
    Punct(u8),
    /// An identifier (raw identifiers without their `r#`): its bytes in the text.
    Ident { at: u32, len: u32 },
    /// A string, char, number or anything else that is one value.
    Literal,
}

#[derive(Copy, Clone, Debug)]
struct Token {
    tok: Tok,
    line: u32,
    column: u32,
    /// The character offset of its first character, and just after its last.
    offset: u32,
    end: u32,
}

/// Splits a text into tokens, one at a time; stops at the first thing it cannot read (an
/// unterminated string or comment ends the text).
///
/// It walks the bytes: every character RON's syntax is made of is ASCII, which never occurs
/// inside a multi-byte character, so only letters and blanks beyond ASCII are decoded. It
/// counts characters (offsets), lines and columns as it goes.
struct Tokenizer<'t> {
    text: &'t str,
    bytes: &'t [u8],
    /// Byte index of the next character.
    i: usize,
    /// Its character offset, line and column.
    chars: u32,
    line: u32,
    column: u32,
    done: bool,
}

impl<'t> Tokenizer<'t> {
    fn new(text: &'t str) -> Tokenizer<'t> {
        Tokenizer {
            text,
            bytes: text.as_bytes(),
            i: 0,
            chars: 0,
            line: 1,
            column: 1,
            done: false,
        }
    }

    /// The character at byte `i`, if any (`i` is on a character boundary).
    fn char_at(&self, i: usize) -> Option<char> {
        match self.bytes.get(i) {
            None => None,
            Some(&b) if b < 0x80 => Some(char::from(b)),
            Some(_) => self.text.get(i..).and_then(|s| s.chars().next()),
        }
    }

    fn byte(&self, k: usize) -> Option<u8> {
        self.bytes.get(self.i + k).copied()
    }

    /// Advances over the next character, keeping the counts.
    fn step(&mut self) {
        let Some(c) = self.char_at(self.i) else {
            return;
        };
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        self.i += c.len_utf8();
        self.chars += 1;
    }

    /// Steps over a `"`-quoted string starting here; false when it does not end.
    fn skip_string(&mut self) -> bool {
        self.step();
        self.skip_quoted_body(b'"')
    }

    /// Steps over a char literal's body and closing `'` (the opening `'` already passed);
    /// false when it does not end.
    fn skip_char_body(&mut self) -> bool {
        self.skip_quoted_body(b'\'')
    }

    /// Steps over a quoted body and its closing `quote`, a backslash escaping the byte after
    /// it; false when it does not end.
    fn skip_quoted_body(&mut self, quote: u8) -> bool {
        loop {
            match self.byte(0) {
                None => return false,
                Some(b'\\') => {
                    self.step();
                    if self.i < self.bytes.len() {
                        self.step();
                    }
                }
                Some(b) if b == quote => {
                    self.step();
                    return true;
                }
                Some(_) => self.step(),
            }
        }
    }

    /// If a raw string (`r"`, `r#"`, `br##"`) starts here, its number of `#`s.
    fn raw_string_start(&self) -> Option<usize> {
        let mut j = 0;
        if self.byte(j) == Some(b'b') {
            j += 1;
        }
        if self.byte(j) != Some(b'r') {
            return None;
        }
        j += 1;
        let mut hashes = 0;
        while self.byte(j) == Some(b'#') {
            hashes += 1;
            j += 1;
        }
        (self.byte(j) == Some(b'"')).then_some(hashes)
    }

    /// The next token, `None` at the end of the text or of what can be read.
    fn next_token(&mut self) -> Option<Token> {
        while !self.done {
            let Some(c) = self.char_at(self.i) else {
                self.done = true;
                break;
            };
            let (line, column, offset) = (self.line, self.column, self.chars);
            let next = self.char_at(self.i + c.len_utf8());
            let tok = if c.is_whitespace() {
                self.step();
                continue;
            } else if c == '/' && next == Some('/') {
                while self.byte(0).is_some_and(|b| b != b'\n') {
                    self.step();
                }
                continue;
            } else if c == '/' && next == Some('*') {
                let mut depth = 0usize;
                loop {
                    match (self.byte(0), self.byte(1)) {
                        (Some(b'/'), Some(b'*')) => {
                            depth += 1;
                            self.step();
                            self.step();
                        }
                        (Some(b'*'), Some(b'/')) => {
                            depth = depth.saturating_sub(1);
                            self.step();
                            self.step();
                            if depth == 0 {
                                break;
                            }
                        }
                        (Some(_), _) => self.step(),
                        (None, _) => {
                            self.done = true;
                            return None;
                        }
                    }
                }
                continue;
            } else if b"()[]{},:#!".contains(&self.bytes[self.i]) {
                let b = self.bytes[self.i];
                self.step();
                Tok::Punct(b)
            } else if c == '"' {
                if !self.skip_string() {
                    self.done = true;
                    return None;
                }
                Tok::Literal
            } else if c == '\'' {
                // A char: 'a', '\n', '\u{1F600}', '\''.
                self.step();
                if !self.skip_char_body() {
                    self.done = true;
                    return None;
                }
                Tok::Literal
            } else if let Some(hashes) = self.raw_string_start() {
                // r"..", r#".."#, br#".."#: skip the prefix, then to `"` followed by the hashes.
                while self.byte(0) != Some(b'"') {
                    self.step();
                }
                self.step();
                loop {
                    match self.byte(0) {
                        None => {
                            self.done = true;
                            return None;
                        }
                        Some(b'"') if (1..=hashes).all(|k| self.byte(k) == Some(b'#')) => {
                            for _ in 0..=hashes {
                                self.step();
                            }
                            break;
                        }
                        Some(_) => self.step(),
                    }
                }
                Tok::Literal
            } else if c == 'b' && (next == Some('"') || next == Some('\'')) {
                // b"bytes" or b'x': a literal like the string or char that follows.
                self.step();
                let ended = if next == Some('"') {
                    self.skip_string()
                } else {
                    self.step();
                    self.skip_char_body()
                };
                if !ended {
                    self.done = true;
                    return None;
                }
                Tok::Literal
            } else if c.is_ascii_digit()
                || ((c == '-' || c == '+' || c == '.')
                    && next.is_some_and(|n| n.is_ascii_digit() || n == '.' || n.is_alphabetic()))
            {
                // A number: digits, letters (hex, exponents, suffixes, inf, NaN), `_`, `.`, and
                // a sign right after an exponent's `e`.
                let hex = c == '0' && matches!(next, Some('x' | 'X'));
                let mut previous = c;
                self.step();
                while let Some(d) = self.char_at(self.i) {
                    let after_exponent = !hex && matches!(previous, 'e' | 'E');
                    if d.is_alphanumeric()
                        || d == '_'
                        || d == '.'
                        || ((d == '+' || d == '-') && after_exponent)
                    {
                        previous = d;
                        self.step();
                    } else {
                        break;
                    }
                }
                Tok::Literal
            } else if c.is_alphabetic() || c == '_' {
                // r#ident
                if c == 'r' && next == Some('#') {
                    self.step();
                    self.step();
                }
                let at = self.i;
                while self
                    .char_at(self.i)
                    .is_some_and(|d| d.is_alphanumeric() || d == '_')
                {
                    self.step();
                }
                Tok::Ident {
                    at: at as u32,
                    len: (self.i - at) as u32,
                }
            } else {
                // Something RON does not have: stop here.
                self.done = true;
                return None;
            };
            return Some(Token {
                tok,
                line,
                column,
                offset,
                end: self.chars,
            });
        }
        None
    }
}

/// A value's contents: a range of the index's `fields` or `elements`.
#[derive(Copy, Clone, Debug)]
enum Body {
    /// A literal, a unit, a unit variant or `None`.
    Atom,
    /// `(name: value, ...)`, possibly after an identifier: `fields[start..start + len]`.
    Fields { start: u32, len: u32 },
    /// `(a, b)`, `[a, b]`, `{k: v}` (values only), possibly after an identifier:
    /// `elements[start..start + len]`.
    Elements { start: u32, len: u32 },
}

#[derive(Copy, Clone, Debug)]
struct Node {
    line: u32,
    column: u32,
    /// Character offsets: its first character, and just after its last.
    offset: u32,
    end: u32,
    /// For `( ... )`: the offset just after the `(`; [`NONE`] otherwise.
    open: u32,
    /// The identifier before it (`load` of `load(..)`): bytes of the text, `len` 0 for none.
    name_at: u32,
    name_len: u32,
    body: Body,
}

/// A field of a struct: its name (bytes of the text) and its value's node.
#[derive(Copy, Clone, Debug)]
struct Field {
    name_at: u32,
    name_len: u32,
    node: u32,
}

/// The values of a text, built by [`RonIndex`] on its first lookup.
#[derive(Clone, Debug, Default)]
struct Index {
    nodes: Vec<Node>,
    fields: Vec<Field>,
    elements: Vec<u32>,
    root: Option<u32>,
}

/// The values of one RON text and where each starts.
#[derive(Clone, Debug)]
pub struct RonIndex<'t> {
    text: &'t str,
    index: OnceCell<Index>,
}

struct Builder<'t> {
    tokens: Tokenizer<'t>,
    /// Tokens read ahead (at most three).
    ahead: VecDeque<Token>,
    /// The last token consumed.
    last: Option<Token>,
    index: Index,
    /// Children of the values being read, moved into `index` when their value ends.
    open_fields: Vec<Field>,
    open_elements: Vec<u32>,
}

impl<'t> Builder<'t> {
    fn peek_token(&mut self, k: usize) -> Option<Token> {
        while self.ahead.len() <= k {
            let t = self.tokens.next_token()?;
            self.ahead.push_back(t);
        }
        self.ahead.get(k).copied()
    }

    fn peek(&mut self, k: usize) -> Option<Tok> {
        self.peek_token(k).map(|t| t.tok)
    }

    fn punct(&mut self, k: usize, c: u8) -> bool {
        self.peek(k) == Some(Tok::Punct(c))
    }

    /// Consumes the next token.
    fn bump(&mut self) {
        if self.peek_token(0).is_some() {
            self.last = self.ahead.pop_front();
        }
    }

    /// Reads one value; `None` when the text ends or is not RON here.
    fn value(&mut self, depth: usize) -> Option<u32> {
        if depth > DEPTH_MAX {
            return None;
        }
        let token = self.peek_token(0)?;
        match token.tok {
            Tok::Literal => {
                self.bump();
                Some(self.push(token, NONE, None, Body::Atom))
            }
            Tok::Ident { at, len } => {
                self.bump();
                if self.punct(0, b'(') {
                    let open = self.peek_token(0).map_or(NONE, |t| t.end);
                    self.bump();
                    self.paren_body(token, open, Some((at, len)), depth)
                } else {
                    Some(self.push(token, NONE, Some((at, len)), Body::Atom))
                }
            }
            Tok::Punct(b'(') => {
                self.bump();
                self.paren_body(token, token.offset + 1, None, depth)
            }
            Tok::Punct(open @ (b'[' | b'{')) => {
                self.bump();
                let close = if open == b'[' { b']' } else { b'}' };
                let base = self.open_elements.len();
                loop {
                    if self.punct(0, close) {
                        self.bump();
                        break;
                    }
                    if open == b'{' {
                        // A map entry: skip the key and its colon, index the value.
                        self.value(depth + 1)?;
                        if !self.punct(0, b':') {
                            return None;
                        }
                        self.bump();
                    }
                    let element = self.value(depth + 1)?;
                    self.open_elements.push(element);
                    if self.punct(0, b',') {
                        self.bump();
                    } else if !self.punct(0, close) {
                        return None;
                    }
                }
                let body = self.close_elements(base);
                Some(self.push(token, NONE, None, body))
            }
            Tok::Punct(_) => None,
        }
    }

    /// Reads what follows a `(`: struct fields or tuple elements, up to the `)`.
    fn paren_body(
        &mut self,
        start: Token,
        open: u32,
        name: Option<(u32, u32)>,
        depth: usize,
    ) -> Option<u32> {
        let is_struct = matches!(self.peek(0), Some(Tok::Ident { .. })) && self.punct(1, b':');
        let body = if is_struct {
            let base = self.open_fields.len();
            loop {
                if self.punct(0, b')') {
                    self.bump();
                    break;
                }
                let Some(Tok::Ident { at, len }) = self.peek(0) else {
                    return None;
                };
                if !self.punct(1, b':') {
                    return None;
                }
                self.bump();
                self.bump();
                let node = self.value(depth + 1)?;
                self.open_fields.push(Field {
                    name_at: at,
                    name_len: len,
                    node,
                });
                if self.punct(0, b',') {
                    self.bump();
                } else if !self.punct(0, b')') {
                    return None;
                }
            }
            let start = self.index.fields.len() as u32;
            let len = (self.open_fields.len() - base) as u32;
            self.index.fields.extend(self.open_fields.drain(base..));
            Body::Fields { start, len }
        } else {
            let base = self.open_elements.len();
            loop {
                if self.punct(0, b')') {
                    self.bump();
                    break;
                }
                let element = self.value(depth + 1)?;
                self.open_elements.push(element);
                if self.punct(0, b',') {
                    self.bump();
                } else if !self.punct(0, b')') {
                    return None;
                }
            }
            self.close_elements(base)
        };
        Some(self.push(start, open, name, body))
    }

    /// The elements read since `base`, moved into the index.
    fn close_elements(&mut self, base: usize) -> Body {
        let start = self.index.elements.len() as u32;
        let len = (self.open_elements.len() - base) as u32;
        self.index.elements.extend(self.open_elements.drain(base..));
        Body::Elements { start, len }
    }

    /// A node that starts at token `start` and ends with the last token consumed.
    fn push(&mut self, start: Token, open: u32, name: Option<(u32, u32)>, body: Body) -> u32 {
        let end = self.last.map_or(start.offset, |t| t.end);
        let (name_at, name_len) = name.unwrap_or((0, 0));
        self.index.nodes.push(Node {
            line: start.line,
            column: start.column,
            offset: start.offset,
            end,
            open,
            name_at,
            name_len,
            body,
        });
        (self.index.nodes.len() - 1) as u32
    }
}

impl Index {
    /// Reads `text` once and indexes every value in it.
    fn build(text: &str) -> Index {
        if u32::try_from(text.len()).is_err() {
            // Offsets are kept in 32 bits: a text this large is not indexed.
            return Index::default();
        }
        let mut builder = Builder {
            tokens: Tokenizer::new(text),
            ahead: VecDeque::with_capacity(4),
            last: None,
            index: Index::default(),
            open_fields: Vec::new(),
            open_elements: Vec::new(),
        };
        // Inner attributes: #![enable(implicit_some)]
        while builder.punct(0, b'#') && builder.punct(1, b'!') && builder.punct(2, b'[') {
            builder.bump();
            builder.bump();
            builder.bump();
            let mut depth = 1usize;
            while depth > 0 {
                match builder.peek(0) {
                    None => break,
                    Some(Tok::Punct(b'[')) => depth += 1,
                    Some(Tok::Punct(b']')) => depth -= 1,
                    Some(_) => {}
                }
                builder.bump();
            }
        }
        let root = builder.value(0);
        let mut index = builder.index;
        index.root = root;
        index.nodes.shrink_to_fit();
        index
    }
}

impl<'t> RonIndex<'t> {
    /// An index of `text`'s values, built on the first lookup.
    pub fn new(text: &'t str) -> RonIndex<'t> {
        RonIndex {
            text,
            index: OnceCell::new(),
        }
    }

    fn index(&self) -> &Index {
        self.index.get_or_init(|| Index::build(self.text))
    }

    /// The name of a node or field: bytes of the text.
    fn name(&self, at: u32, len: u32) -> &str {
        self.text
            .get(at as usize..(at + len) as usize)
            .unwrap_or_default()
    }

    /// Where the value at `path` starts; `None` when the text has no such value.
    pub fn locate(&self, path: &[PathSeg<'_>]) -> Option<Location> {
        let (node, matched) = self.walk(path)?;
        (matched == path.len()).then(|| self.start(node))
    }

    /// Where the value at `path` starts or, when the text does not have it (a field left to
    /// its default), where its deepest ancestor that the text has starts; the top-level value,
    /// or 1:1, when nothing matches.
    pub fn locate_nearest(&self, path: &[PathSeg<'_>]) -> Location {
        self.walk(path)
            .map_or(Location { line: 1, column: 1 }, |(node, _)| {
                self.start(node)
            })
    }

    fn start(&self, node: u32) -> Location {
        let n = &self.index().nodes[node as usize];
        Location {
            line: n.line as usize,
            column: n.column as usize,
        }
    }

    /// The deepest node along `path` and how many segments reached it.
    fn walk(&self, path: &[PathSeg<'_>]) -> Option<(u32, usize)> {
        let index = self.index();
        let mut node = index.root?;
        for (matched, seg) in path.iter().enumerate() {
            let inner = self.through_some(node);
            let next = match (index.nodes[inner as usize].body, seg) {
                (Body::Fields { start, len }, PathSeg::Field(f)) => index.fields
                    [start as usize..(start + len) as usize]
                    .iter()
                    .find(|field| self.name(field.name_at, field.name_len) == *f)
                    .map(|field| field.node),
                (Body::Elements { start, len }, PathSeg::Index(i)) => index.elements
                    [start as usize..(start + len) as usize]
                    .get(*i)
                    .copied(),
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
    fn through_some(&self, mut node: u32) -> u32 {
        let index = self.index();
        loop {
            let n = &index.nodes[node as usize];
            match n.body {
                Body::Elements { start, len: 1 } if self.name(n.name_at, n.name_len) == "Some" => {
                    node = index.elements[start as usize];
                }
                _ => return node,
            }
        }
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

impl RonIndex<'_> {
    /// Where the value at `path` is, or where it would go (see [`Place`]); `None` when the
    /// text has no value at all.
    pub fn place_for(&self, path: &[PathSeg<'_>]) -> Option<Place> {
        let (node, matched) = self.walk(path)?;
        let node = self.through_some(node);
        let n = &self.index().nodes[node as usize];
        if matched == path.len() {
            return Some(Place::Value {
                start: n.offset as usize,
                end: n.end as usize,
            });
        }
        match (n.open, n.body) {
            (open, Body::Fields { .. }) if open != NONE => Some(Place::Insert {
                open: open as usize,
                missing: matched,
            }),
            (open, Body::Elements { len: 0, .. }) if open != NONE => Some(Place::Insert {
                open: open as usize,
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
