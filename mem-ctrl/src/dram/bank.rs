//! The state of one DRAM bank and the commands that change it.
//!
//! ```text
//!                    ACT(row)
//!        +--------+ --------> +-------------------------------+  READ / WRITE
//!        | Closed |           | Open { row, column_commands } | ----------+
//!        +--------+ <-------- +-------------------------------+ <---------+
//!          |    ^   PRE, READA, WRITEA
//!          +----+
//!           REF
//! ```
//!
//! [`transition`] is the one pure, exhaustive `match (state, command)` that defines which
//! command is legal in which state and what it leaves behind; [`required_command`] says which
//! command a queued access needs next. Timing (when a command may issue) lives in
//! the `timing` module, not here.

use std::fmt;

/// The state of one bank.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Default)]
pub enum BankState {
    /// All rows closed (precharged).
    #[default]
    Closed,
    /// `row` is open in the row buffer.
    Open {
        /// The open row.
        row: u32,
        /// Column commands (READ/WRITE) served since the ACT. A column command issued while
        /// this is non-zero is a row hit (validation-data.md section 2).
        column_commands: u32,
    },
}

impl BankState {
    /// The open row, if any.
    pub const fn open_row(self) -> Option<u32> {
        match self {
            BankState::Closed => None,
            BankState::Open { row, .. } => Some(row),
        }
    }
}

impl fmt::Display for BankState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BankState::Closed => f.write_str("closed"),
            BankState::Open {
                row,
                column_commands,
            } => write!(f, "open row {row} ({column_commands} column commands)"),
        }
    }
}

/// A DRAM command as one bank sees it.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum BankCommand {
    /// Open `row`.
    Activate {
        /// The row to open.
        row: u32,
    },
    /// Read a burst from the open row.
    Read,
    /// Read a burst and precharge automatically (closed-page policy).
    ReadPrecharge,
    /// Write a burst to the open row.
    Write,
    /// Write a burst and precharge automatically (closed-page policy).
    WritePrecharge,
    /// Close the open row.
    Precharge,
    /// Refresh (rank-level REF seen by each bank of the rank).
    Refresh,
}

impl BankCommand {
    /// The command's kind, for timing tables.
    pub const fn kind(self) -> CommandKind {
        match self {
            BankCommand::Activate { .. } => CommandKind::Activate,
            BankCommand::Read => CommandKind::Read,
            BankCommand::ReadPrecharge => CommandKind::ReadPrecharge,
            BankCommand::Write => CommandKind::Write,
            BankCommand::WritePrecharge => CommandKind::WritePrecharge,
            BankCommand::Precharge => CommandKind::Precharge,
            BankCommand::Refresh => CommandKind::Refresh,
        }
    }
}

/// A command without its operands: the index of timing tables and of the command log.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum CommandKind {
    /// ACT.
    Activate,
    /// READ.
    Read,
    /// READ with auto-precharge.
    ReadPrecharge,
    /// WRITE.
    Write,
    /// WRITE with auto-precharge.
    WritePrecharge,
    /// PRE.
    Precharge,
    /// REF (all banks of a rank).
    Refresh,
}

impl CommandKind {
    /// Number of kinds.
    pub const COUNT: usize = 7;

    /// Every kind, in index order.
    pub const ALL: [CommandKind; CommandKind::COUNT] = [
        CommandKind::Activate,
        CommandKind::Read,
        CommandKind::ReadPrecharge,
        CommandKind::Write,
        CommandKind::WritePrecharge,
        CommandKind::Precharge,
        CommandKind::Refresh,
    ];

    /// Dense index for tables.
    pub const fn index(self) -> usize {
        match self {
            CommandKind::Activate => 0,
            CommandKind::Read => 1,
            CommandKind::ReadPrecharge => 2,
            CommandKind::Write => 3,
            CommandKind::WritePrecharge => 4,
            CommandKind::Precharge => 5,
            CommandKind::Refresh => 6,
        }
    }

    /// True for READ and READ with auto-precharge.
    pub const fn is_read(self) -> bool {
        matches!(self, CommandKind::Read | CommandKind::ReadPrecharge)
    }

    /// True for WRITE and WRITE with auto-precharge.
    pub const fn is_write(self) -> bool {
        matches!(self, CommandKind::Write | CommandKind::WritePrecharge)
    }

    /// JEDEC-style mnemonic.
    pub const fn mnemonic(self) -> &'static str {
        match self {
            CommandKind::Activate => "ACT",
            CommandKind::Read => "READ",
            CommandKind::ReadPrecharge => "READA",
            CommandKind::Write => "WRITE",
            CommandKind::WritePrecharge => "WRITEA",
            CommandKind::Precharge => "PRE",
            CommandKind::Refresh => "REF",
        }
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mnemonic())
    }
}

/// What a legal command leaves behind.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Transition {
    /// The bank's next state.
    pub next: BankState,
    /// True for a column command to a row that had already served a column command since its
    /// ACT (the definition of a row hit in validation-data.md section 2).
    pub row_hit: bool,
}

/// A command the bank's state does not allow: always a bug in the scheduler.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, thiserror::Error)]
#[error("{command:?} is illegal for a bank in state {state}")]
pub struct IllegalBankCommand {
    /// The bank's state.
    pub state: BankState,
    /// The command.
    pub command: BankCommand,
}

/// The state machine of one bank: the state after `command`, or an error when the command is
/// illegal in `state`. Pure; the caller applies the result.
pub const fn transition(
    state: BankState,
    command: BankCommand,
) -> Result<Transition, IllegalBankCommand> {
    let illegal = Err(IllegalBankCommand { state, command });
    match (state, command) {
        (BankState::Closed, BankCommand::Activate { row }) => Ok(Transition {
            next: BankState::Open {
                row,
                column_commands: 0,
            },
            row_hit: false,
        }),
        // REF needs every bank of the rank precharged and leaves them precharged.
        (BankState::Closed, BankCommand::Refresh) => Ok(Transition {
            next: BankState::Closed,
            row_hit: false,
        }),
        // DRAMsim3 aborts on a PRE to a closed bank; so does this model (the scheduler never
        // asks for one).
        (
            BankState::Closed,
            BankCommand::Read
            | BankCommand::ReadPrecharge
            | BankCommand::Write
            | BankCommand::WritePrecharge
            | BankCommand::Precharge,
        ) => illegal,
        (
            BankState::Open {
                row,
                column_commands,
            },
            BankCommand::Read | BankCommand::Write,
        ) => Ok(Transition {
            next: BankState::Open {
                row,
                column_commands: column_commands.saturating_add(1),
            },
            row_hit: column_commands > 0,
        }),
        (
            BankState::Open {
                column_commands, ..
            },
            BankCommand::ReadPrecharge | BankCommand::WritePrecharge,
        ) => Ok(Transition {
            next: BankState::Closed,
            row_hit: column_commands > 0,
        }),
        (BankState::Open { .. }, BankCommand::Precharge) => Ok(Transition {
            next: BankState::Closed,
            row_hit: false,
        }),
        (BankState::Open { .. }, BankCommand::Activate { .. } | BankCommand::Refresh) => illegal,
    }
}

/// The column command an access uses under a page policy.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum ColumnCommand {
    /// READ (open page).
    Read,
    /// READA (closed page).
    ReadPrecharge,
    /// WRITE (open page).
    Write,
    /// WRITEA (closed page).
    WritePrecharge,
}

impl ColumnCommand {
    /// The bank command.
    pub const fn command(self) -> BankCommand {
        match self {
            ColumnCommand::Read => BankCommand::Read,
            ColumnCommand::ReadPrecharge => BankCommand::ReadPrecharge,
            ColumnCommand::Write => BankCommand::Write,
            ColumnCommand::WritePrecharge => BankCommand::WritePrecharge,
        }
    }

    /// True for a write.
    pub const fn is_write(self) -> bool {
        matches!(self, ColumnCommand::Write | ColumnCommand::WritePrecharge)
    }
}

/// The next command an access to `row` needs from a bank in `state` (DRAMsim3
/// `BankState::GetReadyCommand`, without the timing check): ACT on a closed bank, PRE on a row
/// conflict, the column command itself on the open row.
pub const fn required_command(state: BankState, row: u32, column: ColumnCommand) -> BankCommand {
    match state {
        BankState::Closed => BankCommand::Activate { row },
        BankState::Open { row: open, .. } => {
            if open == row {
                column.command()
            } else {
                BankCommand::Precharge
            }
        }
    }
}

/// The next command a rank-level refresh needs from one bank: PRE if a row is open, else REF.
pub const fn required_for_refresh(state: BankState) -> BankCommand {
    match state {
        BankState::Closed => BankCommand::Refresh,
        BankState::Open { .. } => BankCommand::Precharge,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN_FRESH: BankState = BankState::Open {
        row: 7,
        column_commands: 0,
    };
    const OPEN_USED: BankState = BankState::Open {
        row: 7,
        column_commands: 1,
    };

    #[test]
    fn activate_opens_and_the_first_column_command_is_not_a_hit() {
        let t = transition(BankState::Closed, BankCommand::Activate { row: 7 }).unwrap();
        assert_eq!(t.next, OPEN_FRESH);
        let t = transition(t.next, BankCommand::Read).unwrap();
        assert!(!t.row_hit);
        assert_eq!(t.next, OPEN_USED);
        let t = transition(t.next, BankCommand::Write).unwrap();
        assert!(t.row_hit);
        assert_eq!(
            t.next,
            BankState::Open {
                row: 7,
                column_commands: 2
            }
        );
    }

    #[test]
    fn auto_precharge_closes_and_counts_hits() {
        let t = transition(OPEN_FRESH, BankCommand::ReadPrecharge).unwrap();
        assert_eq!((t.next, t.row_hit), (BankState::Closed, false));
        let t = transition(OPEN_USED, BankCommand::WritePrecharge).unwrap();
        assert_eq!((t.next, t.row_hit), (BankState::Closed, true));
        let t = transition(OPEN_USED, BankCommand::Precharge).unwrap();
        assert_eq!((t.next, t.row_hit), (BankState::Closed, false));
        let t = transition(BankState::Closed, BankCommand::Refresh).unwrap();
        assert_eq!(t.next, BankState::Closed);
    }

    #[test]
    fn illegal_commands_are_errors() {
        for c in [
            BankCommand::Read,
            BankCommand::ReadPrecharge,
            BankCommand::Write,
            BankCommand::WritePrecharge,
            BankCommand::Precharge,
        ] {
            assert!(transition(BankState::Closed, c).is_err(), "{c:?} on closed");
        }
        for c in [BankCommand::Activate { row: 1 }, BankCommand::Refresh] {
            let e = transition(OPEN_USED, c).unwrap_err();
            assert_eq!(e.state, OPEN_USED);
            assert_eq!(e.command, c);
        }
    }

    #[test]
    fn required_commands() {
        assert_eq!(
            required_command(BankState::Closed, 3, ColumnCommand::Read),
            BankCommand::Activate { row: 3 }
        );
        assert_eq!(
            required_command(OPEN_USED, 7, ColumnCommand::WritePrecharge),
            BankCommand::WritePrecharge
        );
        assert_eq!(
            required_command(OPEN_USED, 8, ColumnCommand::Read),
            BankCommand::Precharge
        );
        assert_eq!(required_for_refresh(OPEN_FRESH), BankCommand::Precharge);
        assert_eq!(
            required_for_refresh(BankState::Closed),
            BankCommand::Refresh
        );
    }

    #[test]
    fn kinds_index_densely() {
        for (i, k) in CommandKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }
}
