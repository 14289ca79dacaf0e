//! Reading a trace on a thread of its own while the simulation runs.
//!
//! Parsing a text trace costs about as much as simulating it, and the two need not take
//! turns: a reading thread parses batches of records ahead and hands them over through a
//! bounded channel, in file order. The simulation sees the very records, and the very first
//! error, that reading on its own thread would give it, so reports do not change; only the
//! wall-clock time does.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

/// Records per batch handed from the reading thread to the simulating one.
const BATCH: usize = 4096;
/// Batches read ahead at most (the reader never runs far ahead: memory stays bounded).
const BATCHES: usize = 4;

/// Runs `simulate` on the records of `source`, read on a thread of its own. `source` is read
/// up to its first error (included) or its end, or until `simulate` returns; when `simulate`
/// reads every record, `source` has been read exactly as far as reading it in `simulate` would
/// have read it.
pub fn with_read_ahead<T, E, S, R>(source: S, simulate: impl FnOnce(&mut ReadAhead<T, E>) -> R) -> R
where
    S: Iterator<Item = Result<T, E>> + Send,
    T: Send,
    E: Send,
{
    std::thread::scope(|scope| {
        let (full, arriving) = sync_channel::<Batch<T, E>>(BATCHES);
        // Spent batches go back to the reader, so that it allocates a few and no more.
        let (spent, returned) = channel::<VecDeque<T>>();
        scope.spawn(move || read(source, &full, &returned));
        let mut records = ReadAhead {
            arriving,
            spent,
            current: VecDeque::new(),
            error: None,
        };
        // `records` is dropped before the scope waits for the reader: a reader still going
        // finds the channel closed and stops.
        simulate(&mut records)
    })
}

/// The reading thread: batches of `source`'s records, the last one ending at its end or at
/// its first error.
fn read<T, E>(
    mut source: impl Iterator<Item = Result<T, E>>,
    full: &SyncSender<Batch<T, E>>,
    returned: &Receiver<VecDeque<T>>,
) {
    loop {
        let mut records = returned
            .try_recv()
            .unwrap_or_else(|_| VecDeque::with_capacity(BATCH));
        let mut error = None;
        while records.len() < BATCH {
            match source.next() {
                Some(Ok(record)) => records.push_back(record),
                Some(Err(e)) => {
                    error = Some(e);
                    break;
                }
                None => break,
            }
        }
        let last = records.len() < BATCH || error.is_some();
        // A closed channel: the simulation stopped early and wants no more.
        if full.send(Batch { records, error }).is_err() || last {
            return;
        }
    }
}

/// Records read ahead, in order, and the error that ended them (if one did).
struct Batch<T, E> {
    records: VecDeque<T>,
    error: Option<E>,
}

/// The simulating thread's side: the records of each batch in turn, then its error, if any.
pub struct ReadAhead<T, E> {
    arriving: Receiver<Batch<T, E>>,
    spent: Sender<VecDeque<T>>,
    /// The batch being taken from; a queue, so that it keeps its room when emptied.
    current: VecDeque<T>,
    error: Option<E>,
}

impl<T, E> Iterator for ReadAhead<T, E> {
    type Item = Result<T, E>;

    #[inline]
    fn next(&mut self) -> Option<Result<T, E>> {
        loop {
            if let Some(record) = self.current.pop_front() {
                return Some(Ok(record));
            }
            if let Some(e) = self.error.take() {
                return Some(Err(e));
            }
            // The channel closes when the reader has sent its last batch.
            let batch = self.arriving.recv().ok()?;
            let done = std::mem::replace(&mut self.current, batch.records);
            // The empty batch goes back with its room, for the reader to fill again.
            let _ = self.spent.send(done);
            self.error = batch.error;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_arrive_in_order_and_end_at_the_first_error() {
        let source = (0..10_000u32).map(|i| if i == 9_000 { Err(i) } else { Ok(i) });
        let seen: Vec<Result<u32, u32>> = with_read_ahead(source, |records| records.collect());
        assert_eq!(seen.len(), 9_001);
        assert!(
            seen[..9_000]
                .iter()
                .enumerate()
                .all(|(i, r)| *r == Ok(i as u32))
        );
        assert_eq!(seen[9_000], Err(9_000));
    }

    #[test]
    fn a_source_is_read_to_its_end_and_no_further() {
        let mut pulled = 0;
        let source = std::iter::from_fn(|| {
            pulled += 1;
            (pulled <= 3 * BATCH + 5).then_some(Ok::<usize, ()>(pulled))
        });
        let count = with_read_ahead(source, |records| records.count());
        assert_eq!(count, 3 * BATCH + 5);
        // One call past the last record, as a single thread's `for` loop makes.
        assert_eq!(pulled, 3 * BATCH + 6);
    }

    #[test]
    fn a_simulation_that_stops_early_stops_the_reader() {
        // An endless source: only the closed channel ends the reading thread.
        let source = (0u64..).map(Ok::<u64, ()>);
        let first = with_read_ahead(source, |records| records.take(10).count());
        assert_eq!(first, 10);
    }
}
