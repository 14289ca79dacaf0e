//! What an input file may ask of the loader, kept below every reader so that they all depend
//! on it and it on none of them: the size of a scenario file, its number of ops, how much of a
//! file's name an error shows, and reading a file no larger than its limit.

use std::path::Path;

/// More ops than this in the file (nested ones included, repeats not unrolled) are refused,
/// while the file is read ([`crate::read_budget`]).
pub const OPS_MAX: usize = 1_000_000;
/// A scenario file larger than this (64 MiB) is refused before it is parsed: enough for
/// [`OPS_MAX`] ops of the longest common form, and a bound on the memory reading one takes.
pub const SCENARIO_FILE_BYTES_MAX: u64 = 64 << 20;
/// Characters of a file's path shown in a message (paths may be long, but not megabytes).
pub const FILE_CHARS_SHOWN: usize = 400;

/// Why [`read_bounded`] gave no bytes.
pub(crate) enum Bounded {
    /// The file holds more than the limit.
    TooLarge,
    /// It could not be read.
    Io(std::io::Error),
}

/// The bytes of the file at `path`, if it holds at most `max` of them. Reads at most
/// `max + 1` bytes whatever the file is (a growing file, `/dev/zero`), so memory stays
/// bounded before anything is parsed.
pub(crate) fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, Bounded> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(Bounded::Io)?;
    let expected = file.metadata().map_or(0, |m| m.len());
    if expected > max {
        return Err(Bounded::TooLarge);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(Bounded::Io)?;
    if bytes.len() as u64 > max {
        return Err(Bounded::TooLarge);
    }
    Ok(bytes)
}
