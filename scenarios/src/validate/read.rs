//! The entry points: a file's bytes or text in, a [`Scenario`] or a located
//! [`ScenarioError`] out. `ron`'s own errors are placed at the offending text and given hints
//! here; everything after `ron` is the [`Validator`]'s.

use super::overrides::{self, Edited, Override};
use super::{ScenarioError, Validator};
use crate::limits::{Bounded, OPS_MAX, SCENARIO_FILE_BYTES_MAX, read_bounded};
use crate::locate::{PathSeg, RonIndex};
use crate::machine_file::ron_options;
use crate::read_budget;
use crate::scenario::{Location, Scenario};
use crate::scenario_file::ScenarioFile;
use std::path::Path;

/// Reads and validates a scenario file; errors name the file as `path` is written.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    load_with(path, &[])
}

/// Reads and validates a scenario file with `overrides` applied (`--set`).
pub fn load_with(path: &Path, overrides: &[Override]) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let bytes = read_bounded(path, SCENARIO_FILE_BYTES_MAX).map_err(|e| ScenarioError {
        file: file.clone(),
        place: None,
        message: match e {
            Bounded::TooLarge => too_large(),
            Bounded::Io(e) => format!("cannot read the scenario file: {e}"),
        },
    })?;
    parse_bytes_with(&bytes, &file, overrides)
}

/// The message for a scenario file above [`SCENARIO_FILE_BYTES_MAX`].
fn too_large() -> String {
    format!(
        "the file is larger than {SCENARIO_FILE_BYTES_MAX} bytes ({} MiB): expected a scenario \
         of at most that size (use repeat(times: ..) for long programs)",
        SCENARIO_FILE_BYTES_MAX >> 20
    )
}

/// Validates a scenario file's bytes: they must be UTF-8 text.
pub fn parse_bytes(bytes: &[u8], file: &str) -> Result<Scenario, ScenarioError> {
    parse_bytes_with(bytes, file, &[])
}

/// Validates a scenario file's bytes with `overrides` applied.
pub fn parse_bytes_with(
    bytes: &[u8],
    file: &str,
    overrides: &[Override],
) -> Result<Scenario, ScenarioError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_with(text, file, overrides),
        Err(e) => {
            let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
            let valid = std::str::from_utf8(valid).unwrap_or_default();
            let line = 1 + valid.matches('\n').count();
            let column = 1 + valid.rsplit('\n').next().unwrap_or("").chars().count();
            let byte = bytes.get(e.valid_up_to()).copied().unwrap_or(0);
            Err(ScenarioError {
                file: file.to_owned(),
                place: Some(Location { line, column }),
                message: format!("byte {byte:#04x} is not UTF-8 text: expected a RON text file"),
            })
        }
    }
}

/// Validates a scenario file's text with `overrides` applied (see [`Override`]): each sets one
/// field as if the file said so. Errors in an override's value name it; others keep the
/// file's own places.
pub fn parse_with(
    text: &str,
    file: &str,
    overrides: &[Override],
) -> Result<Scenario, ScenarioError> {
    if overrides.is_empty() {
        return parse(text, file);
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut quoted: Vec<bool> = overrides.iter().map(Override::needs_quotes).collect();
    // An override tried again as text, and the error it gave as written.
    let mut retried: Option<(usize, ScenarioError)> = None;
    loop {
        let edited = overrides::apply(text, file, overrides, &quoted)?;
        let e = match parse(&edited.text, file) {
            Ok(mut s) => {
                s.overrides = overrides
                    .iter()
                    .map(|o| format!("{}={}", o.path, o.value))
                    .collect();
                return Ok(s);
            }
            Err(e) => e,
        };
        let k = e.place.and_then(|p| edited.override_at(p));
        let explained = edited.explain(e, overrides);
        match k {
            Some(k) if !quoted[k] && Edited::may_quote(overrides, k) => {
                quoted[k] = true;
                retried = Some((k, explained));
            }
            // Quoting did not help: the value as written says what is wrong.
            Some(k) if retried.as_ref().is_some_and(|(r, _)| *r == k) => {
                return Err(retried.map_or(explained, |(_, e)| e));
            }
            _ => return Err(explained),
        }
    }
}

/// Validates a scenario file's text; `file` names it in errors and gives the default name.
pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
    if text.len() as u64 > SCENARIO_FILE_BYTES_MAX {
        return Err(ScenarioError {
            file: file.to_owned(),
            place: None,
            message: too_large(),
        });
    }
    // A byte-order mark is invisible in editors: columns are counted without it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(ScenarioError {
            file: file.to_owned(),
            place: Some(Location { line: 1, column: 1 }),
            message: "the file is empty: expected a scenario, `(cores: [(ops: [...])], ...)`"
                .to_owned(),
        });
    }
    let parsed: ScenarioFile = read_budget::scope(|| ron_options().from_str(text)).map_err(
        |e: ron::error::SpannedError| ScenarioError {
            file: file.to_owned(),
            place: Some(budget_place(text, &e.code).unwrap_or_else(|| ron_place(text, &e))),
            message: if e.code != ron::Error::Eof && at_end(text, &e) {
                ron_message(&ron::Error::Eof)
            } else {
                ron_message(&e.code)
            },
        },
    )?;
    let index = RonIndex::new(text);
    Validator::new(file, &index).scenario(parsed)
}

/// Where the op that went past [`OPS_MAX`] is, when `ron` stopped for that
/// ([`read_budget`]): the op the validator would have refused, the first beyond the limit in
/// file order (a repeat or mispredict before the ops it holds). `ron` itself stops only once
/// it has read the op, which for a repeat is after all of its body.
fn budget_place(text: &str, code: &ron::Error) -> Option<Location> {
    let ron::Error::Message(message) = code else {
        return None;
    };
    if !message.starts_with(&format!("more than {OPS_MAX} ops")) {
        return None;
    }
    let index = RonIndex::new(text);
    let mut seen = 0usize;
    let mut core = 0usize;
    loop {
        let list = [
            PathSeg::Field("cores"),
            PathSeg::Index(core),
            PathSeg::Field("ops"),
        ];
        index.locate(&list[..2])?;
        if let Some(place) = nth_op(&index, &list, &mut seen) {
            return Some(place);
        }
        core += 1;
    }
}

/// In the op list at `list` (and the lists its ops hold, depth first), the op that is
/// number [`OPS_MAX`] (0-based) counting from `seen` ops before the list.
fn nth_op(index: &RonIndex<'_>, list: &[PathSeg<'static>], seen: &mut usize) -> Option<Location> {
    let mut path = list.to_vec();
    path.push(PathSeg::Index(0));
    for i in 0.. {
        *path.last_mut().expect("an index") = PathSeg::Index(i);
        let place = index.locate(&path)?;
        if *seen == OPS_MAX {
            return Some(place);
        }
        *seen += 1;
        // A repeat's body, or a mispredict's shadow.
        for inner in [vec![PathSeg::Field("ops")], vec![PathSeg::Index(0)]] {
            let mut nested = path.clone();
            nested.extend(inner);
            if let Some(place) = nth_op(index, &nested, seen) {
                return Some(place);
            }
        }
    }
    None
}

/// Where `ron` stopped, moved forward over whitespace so that it names the offending text
/// (ron often points at the blank before a value, or just after the scenario's last bracket).
fn ron_place(text: &str, e: &ron::error::SpannedError) -> Location {
    let place = Location {
        line: e.span.start.line.max(1),
        column: e.span.start.col.max(1),
    };
    if e.code == ron::Error::UnclosedBlockComment {
        // ron points just after the `/*`: point at it.
        let line = text.split('\n').nth(place.line - 1).unwrap_or("");
        let before: Vec<char> = line.chars().take(place.column - 1).collect();
        if before.ends_with(&['/', '*']) {
            return Location {
                line: place.line,
                column: place.column - 2,
            };
        }
        return place;
    }
    text.split('\n')
        .enumerate()
        .skip(place.line - 1)
        .flat_map(|(i, line)| {
            let skip = if i + 1 == place.line {
                place.column - 1
            } else {
                0
            };
            line.chars()
                .enumerate()
                .skip(skip)
                .map(move |(j, c)| (i + 1, j + 1, c))
        })
        .find(|&(_, _, c)| !c.is_whitespace())
        .map_or(place, |(line, column, _)| Location { line, column })
}

/// True when only whitespace follows where `ron` stopped.
fn at_end(text: &str, e: &ron::error::SpannedError) -> bool {
    let mut lines = text.split('\n').skip(e.span.start.line.saturating_sub(1));
    let first = lines
        .next()
        .map(|l| {
            l.chars()
                .skip(e.span.start.col.saturating_sub(1))
                .collect::<String>()
        })
        .unwrap_or_default();
    first.trim().is_empty() && lines.all(|l| l.trim().is_empty())
}

/// `ron`'s message, with a hint where it helps.
fn ron_message(code: &ron::Error) -> String {
    match code {
        ron::Error::Eof => "unexpected end of the file: expected a scenario `( ... )`, \
                            complete with its closing brackets"
            .to_owned(),
        ron::Error::TrailingCharacters => {
            "unexpected text after the scenario's closing `)`: expected the end of the file"
                .to_owned()
        }
        ron::Error::ExceededRecursionLimit => {
            "values nested too deeply: expected at most 16 levels of repeat or mispredict"
                .to_owned()
        }
        ron::Error::ExpectedComma => "Expected comma (or the closing bracket of the enclosing \
                                      struct, tuple or list)"
            .to_owned(),
        ron::Error::SuggestRawIdentifier(found) => {
            format!("Expected a name (a field, or a variant such as `virt(..)`), found `{found}`")
        }
        other => other.to_string(),
    }
}
