//! `mktme-sim run --set PATH=VALUE`: a field of the scenario file set from the command line,
//! as if the file said so. One file then measures one workload under many configurations.
//!
//! A PATH is the field's place in the file, its names joined by dots, with a number for an
//! element of a list: `seed`, `machine.caches.l1d.size`, `machine.memory.tme.bypass`,
//! `kernel.flush_on_keyid_change`, `run.cycles_max`, `cores.1.ring0`. The VALUE is RON text,
//! as the file would have it (`64`, `true`, `"server"`, `(next_line: false)`, `evict_other_keyids`);
//! a bare word that only makes sense as text (`server`, `64k`) is taken as a string.
//!
//! Overrides are applied to the text before it is read, so a value goes through every check a
//! value in the file goes through. A field the file has is replaced; one it lacks is added to
//! its section, and missing sections are added with it (`--set machine.caches.cores=4` into a
//! file without `machine`). Errors inside an override's text name the override
//! (`file: --set machine.caches.cores=1000: ...`); errors elsewhere keep the file's own lines
//! and columns.

use super::ScenarioError;
use crate::locate::{PathSeg, Place, RonIndex};
use crate::scenario::Location;

/// One `--set PATH=VALUE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    /// The field's path, as given.
    pub path: String,
    /// The RON text of its value, as given.
    pub value: String,
}

impl Override {
    /// Reads `PATH=VALUE`; the error says what is wrong with it.
    pub fn parse(arg: &str) -> Result<Override, String> {
        let Some((path, value)) = arg.split_once('=') else {
            return Err(format!(
                "--set {arg}: expected PATH=VALUE (such as machine.caches.cores=4)"
            ));
        };
        let (path, value) = (path.trim(), value.trim());
        let o = Override {
            path: path.to_owned(),
            value: value.to_owned(),
        };
        o.segments()?;
        if value.is_empty() {
            return Err(format!("--set {arg}: no value after `=`"));
        }
        if value.contains('\n') {
            return Err(format!(
                "--set {path}: the value spans lines: expected one line"
            ));
        }
        // One whole value, so that it cannot spill into the file around it.
        let whole = matches!(
            RonIndex::new(value).place_for(&[]),
            Some(Place::Value { start: 0, end }) if end == value.chars().count()
        );
        if !whole && !bare_word(value) {
            return Err(format!(
                "--set {arg}: the value is not one RON value: expected a number, text in quotes, \
                 a name or one bracketed section such as (cores: 4)"
            ));
        }
        Ok(o)
    }

    /// Whether the value can only be meant as text: a bare word that is not one RON value
    /// (`64k`, `ddr5-4800`; not `lru`, a name RON reads). Such a value is quoted from the
    /// start, so that the text around it stays RON for the overrides applied after it.
    pub(crate) fn needs_quotes(&self) -> bool {
        bare_word(&self.value) && ron::from_str::<ron::Value>(&self.value).is_err()
    }

    /// The path's segments: names and list positions.
    fn segments(&self) -> Result<Vec<PathSeg<'_>>, String> {
        let mut out = Vec::new();
        for seg in self.path.split('.') {
            if let Ok(i) = seg.parse::<usize>() {
                out.push(PathSeg::Index(i));
                continue;
            }
            let mut chars = seg.chars();
            let name = chars
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !name {
                return Err(format!(
                    "--set {}: `{seg}` is not a field name or a list position: expected a path \
                     such as machine.caches.l1d.size or cores.0.ring0",
                    self.path
                ));
            }
            out.push(PathSeg::Field(seg));
        }
        Ok(out)
    }

    /// `--set PATH=VALUE`, for messages.
    fn text(&self) -> String {
        format!("--set {}={}", self.path, self.value)
    }
}

/// `overrides` applied to any RON text with the shape the paths name (a machine file's, for
/// a sweep over a trace), with override `i`'s value taken as a string where `quoted[i]`.
/// Errors name the override; the text's own errors are the caller's to find when it reads it.
pub(crate) fn apply_to_text(
    text: &str,
    file: &str,
    overrides: &[Override],
    quoted: &[bool],
) -> Result<String, ScenarioError> {
    apply(text, file, overrides, quoted).map(|e| e.text)
}

/// Whether `o`'s value is a bare word that could be meant as text (`server`, `64k`).
pub(crate) fn may_be_text(o: &Override) -> bool {
    bare_word(&o.value)
}

/// A bare word that may be meant as text: `server`, `64k`, `ddr5-4800` (letters, digits and
/// `_-./+`, with a letter; not `true` or `false`).
fn bare_word(value: &str) -> bool {
    !matches!(value, "true" | "false")
        && value.contains(|c: char| c.is_ascii_alphabetic())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./+".contains(c))
}

/// A change made to the text: characters `at..at + len` of the edited text came from an
/// override (and replaced `old_len` characters of the text before it).
#[derive(Clone, Copy, Debug)]
struct Edit {
    at: usize,
    len: usize,
    old_len: usize,
    /// Which override.
    from: usize,
}

/// The text with the overrides applied, and where each went.
pub(super) struct Edited {
    pub(super) text: String,
    edits: Vec<Edit>,
    original: String,
}

/// Applies `overrides` in order; `quoted[i]` takes override `i`'s value as a string.
pub(super) fn apply(
    text: &str,
    file: &str,
    overrides: &[Override],
    quoted: &[bool],
) -> Result<Edited, ScenarioError> {
    let mut chars: Vec<char> = text.chars().collect();
    let mut edits: Vec<Edit> = Vec::new();
    let error = |o: &Override, message: String| ScenarioError {
        file: file.to_owned(),
        place: None,
        message: format!("{}: {message}", o.text()),
    };
    for (k, o) in overrides.iter().enumerate() {
        let segments = o.segments().map_err(|m| ScenarioError {
            file: file.to_owned(),
            place: None,
            message: m,
        })?;
        let value = if quoted.get(k).copied().unwrap_or(false) {
            format!("{:?}", o.value)
        } else {
            o.value.clone()
        };
        let current: String = chars.iter().collect();
        let index = RonIndex::new(&current);
        let Some(place) = index.place_for(&segments) else {
            return Err(error(
                o,
                "the file holds no scenario to set it in".to_owned(),
            ));
        };
        let (at, old_len, new) = match place {
            Place::Value { start, end } => (start, end - start, value),
            Place::Insert { open, missing } => {
                let rest = &segments[missing..];
                if let Some(i) = rest.iter().position(|s| matches!(s, PathSeg::Index(_))) {
                    let upto: Vec<String> = segments[..missing + i + 1]
                        .iter()
                        .map(|s| match s {
                            PathSeg::Field(f) => (*f).to_owned(),
                            PathSeg::Index(i) => i.to_string(),
                        })
                        .collect();
                    return Err(error(
                        o,
                        format!(
                            "the file has no element `{}`: --set changes list elements the \
                             file has, and adds none",
                            upto.join(".")
                        ),
                    ));
                }
                // `a: (b: (c: VALUE)), `, inserted first in the section.
                let mut new = value;
                for seg in rest.iter().skip(1).rev() {
                    if let PathSeg::Field(f) = seg {
                        new = format!("({f}: {new})");
                    }
                }
                let PathSeg::Field(first) = rest[0] else {
                    unreachable!("indices are refused above");
                };
                (open, 0, format!("{first}: {new}, "))
            }
            Place::NotASection { depth } => {
                let names: Vec<String> = segments[..=depth.min(segments.len() - 1)]
                    .iter()
                    .map(|s| match s {
                        PathSeg::Field(f) => (*f).to_owned(),
                        PathSeg::Index(i) => i.to_string(),
                    })
                    .collect();
                if let Some(PathSeg::Index(_)) = segments.get(depth) {
                    return Err(error(
                        o,
                        format!(
                            "the file has no element `{}`: --set changes list elements the \
                             file has, and adds none",
                            names.join(".")
                        ),
                    ));
                }
                let names = &names[..depth];
                let what = if depth == 0 {
                    "the scenario".to_owned()
                } else {
                    format!("`{}`", names.join("."))
                };
                return Err(error(
                    o,
                    format!(
                        "{what} is a value, not a section: nothing can be set inside it (set \
                         it whole)"
                    ),
                ));
            }
        };
        let new_chars: Vec<char> = new.chars().collect();
        let delta = new_chars.len() as isize - old_len as isize;
        chars.splice(at..at + old_len, new_chars.iter().copied());
        // Earlier edits after this one move; one this one replaces whole is gone.
        edits.retain(|e| !(e.at >= at && e.at + e.len <= at + old_len && old_len > 0));
        for e in &mut edits {
            if e.at >= at + old_len {
                e.at = (e.at as isize + delta) as usize;
            }
        }
        edits.push(Edit {
            at,
            len: new_chars.len(),
            old_len,
            from: k,
        });
    }
    edits.sort_by_key(|e| e.at);
    Ok(Edited {
        text: chars.into_iter().collect(),
        edits,
        original: text.to_owned(),
    })
}

impl Edited {
    /// Which override an error at `place` of the edited text is about, if any.
    pub(super) fn override_at(&self, place: Location) -> Option<usize> {
        let at = offset_of(&self.text, place)?;
        self.edits
            .iter()
            .find(|e| at >= e.at && at < e.at + e.len.max(1))
            .map(|e| e.from)
    }

    /// The place in the file as written of `place` in the edited text.
    pub(super) fn original_place(&self, place: Location) -> Location {
        let Some(mut at) = offset_of(&self.text, place) else {
            return place;
        };
        let mut shift: isize = 0;
        for e in &self.edits {
            if e.at + e.len <= at {
                shift += e.len as isize - e.old_len as isize;
            }
        }
        at = (at as isize - shift).max(0) as usize;
        location_of(&self.original, at)
    }

    /// An error about the edited text, as the user should read it: about an override, or at
    /// the file's own place.
    pub(super) fn explain(&self, mut e: ScenarioError, overrides: &[Override]) -> ScenarioError {
        let Some(place) = e.place else {
            return e;
        };
        match self.override_at(place) {
            Some(k) => {
                e.place = None;
                e.message = format!("{}: {}", overrides[k].text(), e.message);
            }
            None => e.place = Some(self.original_place(place)),
        }
        e
    }

    /// Whether override `k` is a bare word that could be meant as text.
    pub(super) fn may_quote(overrides: &[Override], k: usize) -> bool {
        overrides.get(k).is_some_and(|o| bare_word(&o.value))
    }
}

/// The character offset of a 1-based line and column.
fn offset_of(text: &str, place: Location) -> Option<usize> {
    let mut offset = 0usize;
    for (i, line) in text.split('\n').enumerate() {
        let n = line.chars().count();
        if i + 1 == place.line {
            return Some(offset + place.column.saturating_sub(1).min(n));
        }
        offset += n + 1;
    }
    None
}

/// The 1-based line and column of a character offset.
fn location_of(text: &str, offset: usize) -> Location {
    let mut line = 1;
    let mut column = 1;
    for c in text.chars().take(offset) {
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    Location { line, column }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(arg: &str) -> Override {
        Override::parse(arg).unwrap()
    }

    fn edited(text: &str, args: &[&str]) -> String {
        let overrides: Vec<Override> = args.iter().map(|a| set(a)).collect();
        apply(text, "f.ron", &overrides, &[]).unwrap().text
    }

    #[test]
    fn only_words_that_are_no_ron_value_need_quotes() {
        assert!(set("machine.memory.dram=ddr5-4800").needs_quotes());
        assert!(set("machine.caches.l1d.size=64k").needs_quotes());
        assert!(!set("machine.caches.alias_policy=none").needs_quotes());
        assert!(!set("seed=3").needs_quotes());
        assert!(!set("machine.memory.dram=\"ddr4-2400\"").needs_quotes());
    }

    #[test]
    fn replace_add_and_create_sections() {
        let text = "(\n  seed: 1,\n  machine: (caches: (cores: 2)),\n  cores: [],\n)";
        assert_eq!(
            edited(text, &["seed=7"]),
            "(\n  seed: 7,\n  machine: (caches: (cores: 2)),\n  cores: [],\n)"
        );
        assert_eq!(
            edited(
                text,
                &["machine.caches.cores=4", "machine.memory.tme.bypass=true"]
            ),
            "(\n  seed: 1,\n  machine: (memory: (tme: (bypass: true)), caches: (cores: 4)),\n  cores: [],\n)"
        );
        assert_eq!(
            edited(
                "(cores: [(ops: [])])",
                &["kernel.keyids=3", "cores.0.ring0=false"]
            ),
            "(kernel: (keyids: 3), cores: [(ring0: false, ops: [])])"
        );
        assert_eq!(
            edited(
                "(cores: [], machine: Some((preset: \"default\")))",
                &["machine.preset=\"server\""]
            ),
            "(cores: [], machine: Some((preset: \"server\")))"
        );
    }

    #[test]
    fn places_map_back_to_the_file_or_to_the_override() {
        let text = "(\n  seed: 1, machine: (caches: (cores: 2)),\n  cores: [x],\n)";
        let overrides = vec![set("seed=1234567"), set("machine.caches.l2.ways=8")];
        let e = apply(text, "f.ron", &overrides, &[]).unwrap();
        // The seed's new text, on line 2.
        assert_eq!(e.override_at(Location { line: 2, column: 9 }), Some(0));
        // `cores` moved right on its line? No: it is on line 3, untouched.
        assert_eq!(
            e.original_place(Location {
                line: 3,
                column: 12
            }),
            Location {
                line: 3,
                column: 12
            }
        );
        // `machine` moved 6 columns right by the seed's longer value.
        assert_eq!(
            e.original_place(Location {
                line: 2,
                column: 20
            }),
            Location {
                line: 2,
                column: 14
            }
        );
        assert!(e.text.contains("(l2: (ways: 8), cores: 2)"));
    }

    #[test]
    fn bad_paths_name_themselves() {
        assert_eq!(
            Override::parse("machine.caches").unwrap_err(),
            "--set machine.caches: expected PATH=VALUE (such as machine.caches.cores=4)"
        );
        assert!(
            Override::parse("machine..x=1")
                .unwrap_err()
                .contains("`` is not a field name")
        );
        assert!(
            Override::parse("Machine.x=1")
                .unwrap_err()
                .contains("`Machine` is not a field name")
        );
        assert_eq!(
            Override::parse("seed=").unwrap_err(),
            "--set seed=: no value after `=`"
        );
        for bad in ["machine.caches=(", "seed=7)", "seed=1 2", "x=(a: 1))"] {
            assert!(
                Override::parse(bad)
                    .unwrap_err()
                    .contains("the value is not one RON value"),
                "{bad}"
            );
        }
        for good in [
            "machine.caches=(cores: 4)",
            "seed=0x10",
            "x=\"a b\"",
            "x=[1, 2]",
            "x=ddr5-4800",
        ] {
            Override::parse(good).unwrap();
        }
        let err = |text: &str, arg: &str| {
            apply(text, "f.ron", &[set(arg)], &[])
                .err()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            err("(seed: 1, cores: [])", "seed.x=1"),
            "f.ron: --set seed.x=1: `seed` is a value, not a section: nothing can be set inside it (set it whole)"
        );
        assert_eq!(
            err("(cores: [])", "cores.2.ring0=false"),
            "f.ron: --set cores.2.ring0=false: the file has no element `cores.2`: --set changes list elements the file has, and adds none"
        );
    }

    #[test]
    fn bare_words_may_be_text() {
        for w in ["server", "64k", "ddr5-4800", "lab/x.ron"] {
            assert!(bare_word(w), "{w}");
        }
        for w in ["64", "true", "false", "\"x\"", "(a: 1)", "[1]"] {
            assert!(!bare_word(w), "{w}");
        }
    }
}
