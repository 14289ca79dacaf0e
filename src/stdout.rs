//! Standard output, written only through a fallible writer: `println!` panics when stdout is
//! closed (`mktme-sim run scenarios/library | head -1`) or full (`> /dev/full`).
//!
//! A write that fails becomes a [`StdoutError`] that the command returns like any other error;
//! `main` then ends the program: quietly with exit 0 for a closed pipe (the reader has what it
//! wanted, as ripgrep does it), with a one-line message on stderr and exit 2 for anything else.
//!
//! Errors go to standard error through [`error`], which never panics (`eprintln!` does when
//! stderr is full) and makes the message safe for a terminal ([`sim_core::text::printable`]:
//! no control characters from a user's file name or scenario reach it).

use std::fmt;
use std::io::{self, Write};

/// Prints `error: MESSAGE` on standard error, escaped for a terminal; a failing stderr is
/// ignored (there is nowhere left to report it).
pub fn error(message: impl fmt::Display) {
    let text = message.to_string();
    let _ = writeln!(io::stderr(), "error: {}", sim_core::text::printable(&text));
}

/// Standard output, locked for the whole command.
pub struct Stdout {
    out: io::StdoutLock<'static>,
}

/// A write to standard output failed.
#[derive(Debug)]
pub struct StdoutError(io::Error);

impl StdoutError {
    /// True when the reader closed the pipe: not a failure of the command.
    pub fn is_broken_pipe(&self) -> bool {
        self.0.kind() == io::ErrorKind::BrokenPipe
    }
}

impl fmt::Display for StdoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write to standard output: {}", self.0)
    }
}

impl std::error::Error for StdoutError {}

impl Stdout {
    /// Standard output, locked.
    pub fn new() -> Stdout {
        Stdout {
            out: io::stdout().lock(),
        }
    }

    /// Writes `text` as it is.
    pub fn write_str(&mut self, text: &str) -> Result<(), StdoutError> {
        self.out.write_all(text.as_bytes()).map_err(StdoutError)
    }

    /// Writes formatted text: what `write!(out, ...)` and `writeln!(out, ...)` call.
    pub fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> Result<(), StdoutError> {
        self.out.write_fmt(args).map_err(StdoutError)
    }

    /// Writes out whatever is still buffered: the last chance for a write error to show.
    pub fn flush(&mut self) -> Result<(), StdoutError> {
        self.out.flush().map_err(StdoutError)
    }
}
