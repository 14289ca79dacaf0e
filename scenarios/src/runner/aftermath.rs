//! What became of each violation by the end of the run, read off the run itself: what DRAM
//! holds for the line, whether a data loss followed, whether a line cached across a key change
//! was written back under the new key. The checker's explanation says why the event breaks
//! the rule; this says what this run then did, so no sentence of the report depends on an
//! order the run did not take (which alias of an unflushed pair the end-of-run drain wrote back
//! last, for one).

use super::observe::LastWriteback;
use cache_model::WritebackCause;
use checker::{ChainEvent, Violation, ViolationKind};
use cpu_model::System;
use sim_core::{Cycle, DetHashMap, DramAddr, KeyId, LineBytes};

/// The line as DRAM holds it at the end, read through `keyid` (its key at the end).
fn final_through(system: &System, keyid: KeyId, line: DramAddr) -> Option<LineBytes> {
    let memory = system.machine().memory();
    let pa = memory.layout().compose(keyid, line).ok()?;
    (line.raw() < memory.dram_bytes()).then(|| memory.peek_line(pa))
}

/// Whether `v` happened during the end-of-run drain: after the programs ended, or in their
/// last cycle by one of the drain's write-backs (the drain starts in that cycle).
pub(super) fn in_drain(v: &Violation, programs_done: Option<Cycle>) -> bool {
    let by_drain = v.chain.last().is_some_and(|c| {
        matches!(
            c.event,
            ChainEvent::MemWriteback {
                cause: WritebackCause::Drain,
                ..
            }
        )
    });
    programs_done.is_some_and(|done| v.cycle > done || (v.cycle == done && by_drain))
}

/// " (during the end-of-run drain)" for a violation of the drain.
fn when(v: &Violation, programs_done: Option<Cycle>) -> &'static str {
    if in_drain(v, programs_done) {
        " (during the end-of-run drain)"
    } else {
        ""
    }
}

/// The same for a write-back.
fn when_written(w: &LastWriteback) -> &'static str {
    if w.by_drain {
        " (during the end-of-run drain)"
    } else {
        ""
    }
}

/// What `v` led to in this run, in a sentence; `None` when the run shows nothing more.
pub(super) fn aftermath(
    v: &Violation,
    all: &[Violation],
    system: &System,
    last_writeback: &DetHashMap<(DramAddr, KeyId), LastWriteback>,
    programs_done: Option<Cycle>,
) -> Option<String> {
    let line = v.line;
    let drained = programs_done.is_some();
    match v.kind {
        ViolationKind::DataLoss => {
            let lost = v.lost.as_ref()?;
            let through_lost = final_through(system, lost.lost_keyid, line)?;
            let through_writer = final_through(system, lost.writer_keyid, line)?;
            Some(if through_lost == lost.lost_bytes {
                format!(
                    "by the end of the run a later write-back put KeyID {}'s lost data back: \
                     the line reads through KeyID {} as it was",
                    lost.lost_keyid.get(),
                    lost.lost_keyid.get()
                )
            } else if through_writer == lost.written_bytes {
                format!(
                    "at the end of the run DRAM still holds KeyID {}'s line (it reads back \
                     through KeyID {} as written), and through KeyID {} the line reads as other \
                     data: the loss stands",
                    lost.writer_keyid.get(),
                    lost.writer_keyid.get(),
                    lost.lost_keyid.get()
                )
            } else {
                "the line was written again later: at the end of the run it reads as neither \
                 line through their KeyIDs"
                    .to_owned()
            })
        }
        ViolationKind::DualDirty | ViolationKind::PhantomDirty => {
            let acting = *v.keyids.first()?;
            let loss = all.iter().find(|l| {
                l.kind == ViolationKind::DataLoss
                    && l.line == line
                    && l.cycle >= v.cycle
                    && (v.kind == ViolationKind::DualDirty || l.keyids.first() == Some(&acting))
                    && v.keyids.iter().all(|k| l.keyids.contains(k))
            });
            Some(match loss {
                Some(l) => format!(
                    "it led to the data_loss at cycle {}{}",
                    l.cycle.get(),
                    when(l, programs_done)
                ),
                None if v.kind == ViolationKind::DualDirty && drained => {
                    "no data was lost on this line afterwards: whichever alias the run wrote back \
                     last carried the newer data"
                        .to_owned()
                }
                None if drained => {
                    "its write-back lost no data in this run (a round trip of unchanged data, or \
                     no write-back at all)"
                        .to_owned()
                }
                None => "no data was lost on this line before the run stopped".to_owned(),
            })
        }
        ViolationKind::ReprogramWhileCached => {
            let keyid = *v.keyids.first()?;
            match last_writeback.get(&(line, keyid)) {
                Some(w) if w.cycle >= v.cycle => {
                    let now = final_through(system, keyid, line)?;
                    Some(if now == w.data {
                        format!(
                            "the copy was written back at cycle {}{}, encrypted under the new \
                             key: through KeyID {} the line reads back as that data, from \
                             before the key change",
                            w.cycle.get(),
                            when_written(w),
                            keyid.get()
                        )
                    } else {
                        format!(
                            "the copy was written back at cycle {}{}, and the line was written \
                             again afterwards",
                            w.cycle.get(),
                            when_written(w)
                        )
                    })
                }
                _ => Some(format!(
                    "no write-back of this line through KeyID {} followed the key change in \
                     this run",
                    keyid.get()
                )),
            }
        }
        ViolationKind::StaleRead => None,
    }
}
