//! MESI: the coherence state of one core's copy of a line, and the one function that says how
//! it changes.
//!
//! ```text
//!        local    local       local     remote      remote RFO   flush     CLWB      prefetch /
//!        load     store       eviction  read        or upgrade                       spec. fill
//!   M    M        M           I  wb     S  wb+data  I  wb+data   I  wb     E  wb     M
//!   E    E        M (silent)  I         S  data     I  data      I         E         E
//!   S    S        M  upgrade  I         S           I            I         S         S
//!   I    E|S      M  RFO      I         I           I            I         I         E|S
//!        fetch                                                                       fetch
//!
//!   wb: write the modified data out; data: answer the snoop with the line; upgrade:
//!   invalidate the other sharers; RFO: fetch and invalidate the others; E|S: E when no
//!   other core holds the line.
//! ```
//!
//! The state belongs to a core (its L1D and L2 copies share it, the L2 being inclusive of the
//! L1D). [`transition`] is pure and exhaustive: every (state, event) pair is a match arm, with
//! no catch-all, so adding a state or an event does not compile until every pair is decided.
//! It returns the next state and the actions the hierarchy must carry out; the hierarchy owns
//! the data, the directory and the timing.
//!
//! Whether a copy must be written back on eviction follows the copy's dirty bit, which is the
//! same as "state M" on every real processor: only a committed store makes a line dirty, and
//! speculative loads and prefetches fill E or S (mktme-facts.md 4.1, modelling advice). The
//! `writeback_speculative_lines` counterfactual knob breaks exactly that equivalence: it marks
//! E or S copies dirty, and the hierarchy then writes them back when they leave although the
//! protocol says nothing needs writing.

use std::fmt;

/// The coherence state of a core's copy of a line.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Default)]
pub enum MesiState {
    /// Modified: the only copy on any core, newer than the LLC and memory.
    Modified,
    /// Exclusive: the only copy on any core, clean.
    Exclusive,
    /// Shared: other cores may hold clean copies too; read-only.
    Shared,
    /// Invalid: no copy.
    #[default]
    Invalid,
}

impl MesiState {
    /// Every state, in the order M, E, S, I.
    pub const ALL: [MesiState; 4] = [
        MesiState::Modified,
        MesiState::Exclusive,
        MesiState::Shared,
        MesiState::Invalid,
    ];

    /// `M`, `E`, `S` or `I`.
    pub const fn letter(self) -> char {
        match self {
            MesiState::Modified => 'M',
            MesiState::Exclusive => 'E',
            MesiState::Shared => 'S',
            MesiState::Invalid => 'I',
        }
    }

    /// True for M and E: the core may write without asking anyone.
    pub const fn is_exclusive(self) -> bool {
        match self {
            MesiState::Modified | MesiState::Exclusive => true,
            MesiState::Shared | MesiState::Invalid => false,
        }
    }

    /// True for M, E and S.
    pub const fn is_valid(self) -> bool {
        match self {
            MesiState::Modified | MesiState::Exclusive | MesiState::Shared => true,
            MesiState::Invalid => false,
        }
    }
}

impl fmt::Display for MesiState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

/// Something that happens to a core's copy of a line.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum MesiEvent {
    /// This core loads the line. `others_hold`: after the directory's snoops, another core
    /// still holds a copy (decides E or S on a fill).
    LocalLoad {
        /// Another core holds a copy.
        others_hold: bool,
    },
    /// This core stores to the line (needs M).
    LocalStore,
    /// This core's private caches drop the line (replacement, or an inclusive outer level's
    /// back-invalidation).
    LocalEviction,
    /// Another core reads the line (the directory snoops this core).
    RemoteRead,
    /// Another core reads the line for ownership or upgrades its shared copy: every other copy
    /// goes.
    RemoteReadForOwnership,
    /// CLFLUSH, CLFLUSHOPT, WBINVD or an alias eviction: write back if modified, invalidate.
    Flush,
    /// CLWB (and the end-of-run drain): write back if modified, keep a clean copy.
    Clwb,
    /// A hardware or software prefetch, or a speculative load, brings the line in. Such fills
    /// are never M. `others_hold` as for [`MesiEvent::LocalLoad`].
    SpeculativeFill {
        /// Another core holds a copy.
        others_hold: bool,
    },
}

impl MesiEvent {
    /// One of each event (with `others_hold` both ways), for exhaustive tests.
    pub const ALL: [MesiEvent; 10] = [
        MesiEvent::LocalLoad { others_hold: false },
        MesiEvent::LocalLoad { others_hold: true },
        MesiEvent::LocalStore,
        MesiEvent::LocalEviction,
        MesiEvent::RemoteRead,
        MesiEvent::RemoteReadForOwnership,
        MesiEvent::Flush,
        MesiEvent::Clwb,
        MesiEvent::SpeculativeFill { others_hold: false },
        MesiEvent::SpeculativeFill { others_hold: true },
    ];
}

/// What the hierarchy must do for a transition. All false: nothing but the state change.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct MesiActions {
    /// Fetch the line's data: this core has no copy.
    pub fetch: bool,
    /// Invalidate every other core's copy (read-for-ownership or upgrade).
    pub invalidate_others: bool,
    /// This core's modified data must leave for the next level out (the LLC, or memory for a
    /// flush or CLWB) before the copy is dropped or cleaned.
    pub write_back: bool,
    /// This core answers a snoop with the line's data (an M or E owner asked by another core).
    pub supply_data: bool,
}

impl MesiActions {
    const NONE: MesiActions = MesiActions {
        fetch: false,
        invalidate_others: false,
        write_back: false,
        supply_data: false,
    };
    const FETCH: MesiActions = MesiActions {
        fetch: true,
        ..MesiActions::NONE
    };
    const READ_FOR_OWNERSHIP: MesiActions = MesiActions {
        fetch: true,
        invalidate_others: true,
        ..MesiActions::NONE
    };
    const UPGRADE: MesiActions = MesiActions {
        invalidate_others: true,
        ..MesiActions::NONE
    };
    const WRITE_BACK: MesiActions = MesiActions {
        write_back: true,
        ..MesiActions::NONE
    };
    const SUPPLY: MesiActions = MesiActions {
        supply_data: true,
        ..MesiActions::NONE
    };
    const WRITE_BACK_AND_SUPPLY: MesiActions = MesiActions {
        write_back: true,
        supply_data: true,
        ..MesiActions::NONE
    };
}

/// The result of [`transition`].
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct MesiTransition {
    /// The state after the event.
    pub next: MesiState,
    /// What the hierarchy must do.
    pub actions: MesiActions,
}

const fn to(next: MesiState, actions: MesiActions) -> MesiTransition {
    MesiTransition { next, actions }
}

/// The state a fill lands in: E when no other core holds the line, S otherwise.
const fn shared_or_exclusive(others_hold: bool) -> MesiState {
    if others_hold {
        MesiState::Shared
    } else {
        MesiState::Exclusive
    }
}

/// The MESI protocol: the next state of a core's copy and the actions to carry out.
///
/// Events that need no copy (a remote request, a flush, CLWB) leave `I` as it is and ask for
/// nothing; a local eviction of `I` has nothing to evict. A prefetch or speculative fill of a
/// line the core already holds changes nothing (the line is there; the fill is dropped).
pub const fn transition(state: MesiState, event: MesiEvent) -> MesiTransition {
    use MesiEvent as Ev;
    use MesiState::{Exclusive as E, Invalid as I, Modified as M, Shared as S};
    match (state, event) {
        // A load or a clean fill never changes a copy that is there.
        (M, Ev::LocalLoad { .. }) => to(M, MesiActions::NONE),
        (E, Ev::LocalLoad { .. }) => to(E, MesiActions::NONE),
        (S, Ev::LocalLoad { .. }) => to(S, MesiActions::NONE),
        (I, Ev::LocalLoad { others_hold }) => {
            to(shared_or_exclusive(others_hold), MesiActions::FETCH)
        }

        // A store needs M: E gets it silently, S asks the others to invalidate (upgrade), I
        // reads for ownership.
        (M, Ev::LocalStore) => to(M, MesiActions::NONE),
        (E, Ev::LocalStore) => to(M, MesiActions::NONE),
        (S, Ev::LocalStore) => to(M, MesiActions::UPGRADE),
        (I, Ev::LocalStore) => to(M, MesiActions::READ_FOR_OWNERSHIP),

        (M, Ev::LocalEviction) => to(I, MesiActions::WRITE_BACK),
        (E, Ev::LocalEviction) => to(I, MesiActions::NONE),
        (S, Ev::LocalEviction) => to(I, MesiActions::NONE),
        (I, Ev::LocalEviction) => to(I, MesiActions::NONE),

        // Another core reads: an owner keeps a shared copy, the modified data going to the
        // LLC so that every copy and the LLC agree (no O state).
        (M, Ev::RemoteRead) => to(S, MesiActions::WRITE_BACK_AND_SUPPLY),
        (E, Ev::RemoteRead) => to(S, MesiActions::SUPPLY),
        (S, Ev::RemoteRead) => to(S, MesiActions::NONE),
        (I, Ev::RemoteRead) => to(I, MesiActions::NONE),

        (M, Ev::RemoteReadForOwnership) => to(I, MesiActions::WRITE_BACK_AND_SUPPLY),
        (E, Ev::RemoteReadForOwnership) => to(I, MesiActions::SUPPLY),
        (S, Ev::RemoteReadForOwnership) => to(I, MesiActions::NONE),
        (I, Ev::RemoteReadForOwnership) => to(I, MesiActions::NONE),

        (M, Ev::Flush) => to(I, MesiActions::WRITE_BACK),
        (E, Ev::Flush) => to(I, MesiActions::NONE),
        (S, Ev::Flush) => to(I, MesiActions::NONE),
        (I, Ev::Flush) => to(I, MesiActions::NONE),

        // CLWB keeps the line, clean: M -> E (no other core can hold it while it is M).
        (M, Ev::Clwb) => to(E, MesiActions::WRITE_BACK),
        (E, Ev::Clwb) => to(E, MesiActions::NONE),
        (S, Ev::Clwb) => to(S, MesiActions::NONE),
        (I, Ev::Clwb) => to(I, MesiActions::NONE),

        // Prefetches and speculative loads fill clean, never M (mktme-facts.md 4.1).
        (M, Ev::SpeculativeFill { .. }) => to(M, MesiActions::NONE),
        (E, Ev::SpeculativeFill { .. }) => to(E, MesiActions::NONE),
        (S, Ev::SpeculativeFill { .. }) => to(S, MesiActions::NONE),
        (I, Ev::SpeculativeFill { others_hold }) => {
            to(shared_or_exclusive(others_hold), MesiActions::FETCH)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MesiEvent as Ev;
    use MesiState::{Exclusive as E, Invalid as I, Modified as M, Shared as S};

    const N: MesiActions = MesiActions::NONE;
    const FETCH: MesiActions = MesiActions::FETCH;
    const RFO: MesiActions = MesiActions::READ_FOR_OWNERSHIP;
    const UPG: MesiActions = MesiActions::UPGRADE;
    const WB: MesiActions = MesiActions::WRITE_BACK;
    const SUP: MesiActions = MesiActions::SUPPLY;
    const WBS: MesiActions = MesiActions::WRITE_BACK_AND_SUPPLY;

    /// The whole protocol as a table: (state, event) -> (next, actions). Written out by hand,
    /// independently of the match above.
    fn table() -> Vec<(MesiState, MesiEvent, MesiState, MesiActions)> {
        let load_alone = Ev::LocalLoad { others_hold: false };
        let load_shared = Ev::LocalLoad { others_hold: true };
        let spec_alone = Ev::SpeculativeFill { others_hold: false };
        let spec_shared = Ev::SpeculativeFill { others_hold: true };
        vec![
            (M, load_alone, M, N),
            (M, load_shared, M, N),
            (M, Ev::LocalStore, M, N),
            (M, Ev::LocalEviction, I, WB),
            (M, Ev::RemoteRead, S, WBS),
            (M, Ev::RemoteReadForOwnership, I, WBS),
            (M, Ev::Flush, I, WB),
            (M, Ev::Clwb, E, WB),
            (M, spec_alone, M, N),
            (M, spec_shared, M, N),
            (E, load_alone, E, N),
            (E, load_shared, E, N),
            (E, Ev::LocalStore, M, N),
            (E, Ev::LocalEviction, I, N),
            (E, Ev::RemoteRead, S, SUP),
            (E, Ev::RemoteReadForOwnership, I, SUP),
            (E, Ev::Flush, I, N),
            (E, Ev::Clwb, E, N),
            (E, spec_alone, E, N),
            (E, spec_shared, E, N),
            (S, load_alone, S, N),
            (S, load_shared, S, N),
            (S, Ev::LocalStore, M, UPG),
            (S, Ev::LocalEviction, I, N),
            (S, Ev::RemoteRead, S, N),
            (S, Ev::RemoteReadForOwnership, I, N),
            (S, Ev::Flush, I, N),
            (S, Ev::Clwb, S, N),
            (S, spec_alone, S, N),
            (S, spec_shared, S, N),
            (I, load_alone, E, FETCH),
            (I, load_shared, S, FETCH),
            (I, Ev::LocalStore, M, RFO),
            (I, Ev::LocalEviction, I, N),
            (I, Ev::RemoteRead, I, N),
            (I, Ev::RemoteReadForOwnership, I, N),
            (I, Ev::Flush, I, N),
            (I, Ev::Clwb, I, N),
            (I, spec_alone, E, FETCH),
            (I, spec_shared, S, FETCH),
        ]
    }

    #[test]
    fn every_state_and_event_is_in_the_table() {
        let t = table();
        assert_eq!(t.len(), MesiState::ALL.len() * MesiEvent::ALL.len());
        for s in MesiState::ALL {
            for e in MesiEvent::ALL {
                assert_eq!(
                    t.iter()
                        .filter(|(ts, te, _, _)| *ts == s && *te == e)
                        .count(),
                    1,
                    "{s} x {e:?}"
                );
            }
        }
    }

    #[test]
    fn transition_matches_the_table() {
        for (state, event, next, actions) in table() {
            assert_eq!(
                transition(state, event),
                MesiTransition { next, actions },
                "{state} x {event:?}"
            );
        }
    }

    #[test]
    fn protocol_invariants() {
        for s in MesiState::ALL {
            for e in MesiEvent::ALL {
                let t = transition(s, e);
                // Nothing but a committed store reaches M from a state that is not M.
                if t.next == M && s != M {
                    assert_eq!(e, Ev::LocalStore, "{s} x {e:?} reached M");
                }
                // Only modified data is ever written back by the protocol.
                if t.actions.write_back {
                    assert_eq!(s, M, "{s} x {e:?} writes back");
                }
                // A fetch is needed exactly when there is no copy and one is being made.
                assert_eq!(t.actions.fetch, s == I && t.next != I, "{s} x {e:?}");
                // Remote events and flushes never give this core a copy.
                if matches!(
                    e,
                    Ev::RemoteRead | Ev::RemoteReadForOwnership | Ev::Flush | Ev::LocalEviction
                ) {
                    assert!(!t.next.is_exclusive() || s == E && e == Ev::Clwb);
                    assert!(!t.actions.fetch && !t.actions.invalidate_others);
                }
                // Only owners answer snoops with data.
                if t.actions.supply_data {
                    assert!(s.is_exclusive());
                }
            }
        }
    }

    #[test]
    fn letters_and_predicates() {
        let letters: String = MesiState::ALL.iter().map(|s| s.letter()).collect();
        assert_eq!(letters, "MESI");
        assert_eq!(M.to_string(), "M");
        assert!(M.is_exclusive() && E.is_exclusive() && !S.is_exclusive() && !I.is_exclusive());
        assert!(S.is_valid() && !I.is_valid());
        assert_eq!(MesiState::default(), I);
    }
}
