//! The trace core's front end: a trace's accesses split into line pieces and translated to
//! physical addresses, in trace order.
//!
//! Nothing here depends on time: the pieces, their addresses and the first-touch frames are a
//! function of the trace alone. So the feed can run ahead of the timed loop (on another thread,
//! as `mktme-sim trace` does), and the loop takes pieces from it as it issues them.

use super::{TraceRunConfig, Translation};
use cache_model::access::{Access, AccessKind};
use sim_core::{AddressLayout, DetHashMap, DramAddr, LINE_BYTES, PAGE_SHIFT, PhysAddr, VirtAddr};

/// One line piece of a trace access, ready to issue.
///
/// Kept to 16 bytes: pieces are the whole traffic between the reading thread and the
/// simulating one, two million of them for a two-million-access trace.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Piece {
    /// Where the piece goes.
    pub addr: PhysAddr,
    /// Pieces of the same access after this one (an access of at most 4 GiB has at most
    /// 2^26 + 1 pieces).
    pub rest: u32,
    /// Read or write.
    pub kind: AccessKind,
    /// Bytes of the piece (1 to 64, within one line).
    pub len: u8,
}

/// Why a feed stopped: the trace could not be read, or a piece's address does not fit the
/// machine. A run reports the first when it reaches it and the second when the piece's turn
/// to issue comes, as it would report a piece's own failure.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum FeedError<E> {
    /// The trace reader's error.
    Trace(E),
    /// A piece whose address does not fit the machine.
    Address(AddressMisfit),
}

/// A piece whose address does not fit the machine: the access it belongs to and why.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AddressMisfit {
    /// The 0-based index of its access in the trace.
    pub index: u64,
    /// The trace address of the piece's first byte.
    pub at: u64,
    /// Pieces of the same access after this one.
    pub rest: u32,
    /// What is wrong.
    pub why: String,
}

/// What a feed has read, for the run's report.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct FeedCounts {
    /// Trace accesses read (a Lackey `M` counts as a read and a write).
    pub accesses: u64,
    /// Of those, reads.
    pub reads: u64,
    /// Of those, writes.
    pub writes: u64,
    /// Line pieces made.
    pub pieces: u64,
    /// 4 KiB pages given a frame (first-touch translation; 0 with identity translation).
    pub pages_touched: u64,
}

/// The pieces of a trace, in order; an error ends them (it is the last item).
pub struct TraceFeed<I> {
    trace: I,
    translation: Translation,
    layout: AddressLayout,
    keyid: sim_core::KeyId,
    dram_bytes: u64,
    /// The access being split, streamed one piece at a time (a 4 GiB access is 67 M pieces:
    /// they are made as they are taken, never queued).
    current: Option<Splitting>,
    /// First-touch frames by the trace's virtual page, with the page's physical address once
    /// composed.
    frames: DetHashMap<VirtAddr, (u64, u64)>,
    /// The last page translated, with its DRAM page and its physical page under the KeyID
    /// (most pieces fall in the page of the piece before them).
    last_page: Option<(VirtAddr, u64, u64)>,
    counts: FeedCounts,
}

impl<I> TraceFeed<I> {
    /// A feed of `trace` for a machine of `layout` with `dram_bytes` of DRAM, translated as
    /// `config` says.
    pub fn new(
        trace: I,
        layout: AddressLayout,
        dram_bytes: u64,
        config: &TraceRunConfig,
    ) -> TraceFeed<I> {
        TraceFeed {
            trace,
            translation: config.translation,
            layout,
            keyid: config.keyid,
            dram_bytes,
            current: None,
            frames: DetHashMap::default(),
            last_page: None,
            counts: FeedCounts::default(),
        }
    }

    /// What the feed has read so far.
    pub fn counts(&self) -> FeedCounts {
        FeedCounts {
            pages_touched: match self.translation {
                Translation::FirstTouch => self.frames.len() as u64,
                Translation::Identity => 0,
            },
            ..self.counts
        }
    }

    /// The physical address of trace address `addr`, giving its page a frame on first touch.
    #[inline]
    fn phys(&mut self, addr: u64) -> Result<PhysAddr, String> {
        let va = VirtAddr::new(addr);
        let page = va.page_base();
        let offset = va.page_offset();
        let (dram_page, pa_page) = match self.last_page {
            Some((p, dram_page, pa_page)) if p == page => (dram_page, Some(pa_page)),
            _ => match self.translation {
                Translation::Identity => (page.raw(), None),
                Translation::FirstTouch => {
                    let next = self.frames.len() as u64;
                    let &mut (frame, pa_page) =
                        self.frames.entry(page).or_insert((next, NOT_COMPOSED));
                    (
                        frame << PAGE_SHIFT,
                        (pa_page != NOT_COMPOSED).then_some(pa_page),
                    )
                }
            },
        };
        let dram = dram_page | offset;
        if dram >= self.dram_bytes {
            return Err(format!(
                "DRAM address {dram:#x} is beyond the {:#x} bytes installed",
                self.dram_bytes
            ));
        }
        let pa_page = match pa_page {
            Some(pa_page) => pa_page,
            None => {
                let pa = self
                    .layout
                    .compose(self.keyid, DramAddr::new(dram))
                    .map_err(|e| e.to_string())?;
                // The KeyID sits above the DRAM address bits: a page's addresses differ in
                // the offset alone.
                let pa_page = pa.raw() - offset;
                if let Some(entry) = self.frames.get_mut(&page) {
                    entry.1 = pa_page;
                }
                pa_page
            }
        };
        self.last_page = Some((page, dram_page, pa_page));
        Ok(PhysAddr::new(pa_page | offset))
    }
}

impl<I, E> Iterator for TraceFeed<I>
where
    I: Iterator<Item = Result<Access, E>>,
{
    type Item = Result<Piece, FeedError<E>>;

    #[inline]
    fn next(&mut self) -> Option<Result<Piece, FeedError<E>>> {
        // The next access, once the last one is wholly split.
        while self.current.is_none() {
            let access = match self.trace.next()? {
                Ok(access) => access,
                Err(e) => return Some(Err(FeedError::Trace(e))),
            };
            let index = self.counts.accesses;
            self.counts.accesses += 1;
            match access.kind {
                AccessKind::Read => self.counts.reads += 1,
                AccessKind::Write => self.counts.writes += 1,
            }
            let end = access.addr.saturating_add(u64::from(access.size.max(1)));
            self.current = (access.addr < end).then_some(Splitting {
                index,
                kind: access.kind,
                at: access.addr,
                end,
            });
        }
        let split = self.current.as_mut().expect("an access is being split");
        let at = split.at;
        let line_end = (at | (LINE_BYTES as u64 - 1))
            .saturating_add(1)
            .min(split.end);
        split.at = line_end;
        let (kind, index) = (split.kind, split.index);
        let rest = if line_end == split.end {
            self.current = None;
            0
        } else {
            split.pieces()
        };
        self.counts.pieces += 1;
        let rest = u32::try_from(rest).expect("an access of at most 4 GiB");
        Some(match self.phys(at) {
            Ok(addr) => Ok(Piece {
                addr,
                rest,
                kind,
                len: (line_end - at) as u8,
            }),
            Err(why) => Err(FeedError::Address(AddressMisfit {
                index,
                at,
                rest,
                why,
            })),
        })
    }
}

/// A first-touch frame whose physical page is not composed yet (no physical page is all ones).
const NOT_COMPOSED: u64 = u64::MAX;

/// The rest of one access, split into line pieces as they are taken.
struct Splitting {
    /// The access's place in the trace.
    index: u64,
    kind: AccessKind,
    /// The first byte not yet split off.
    at: u64,
    /// One past the access's last byte (above `at`).
    end: u64,
}

impl Splitting {
    /// Line pieces left.
    fn pieces(&self) -> u64 {
        let line = LINE_BYTES as u64;
        (self.end - 1) / line - self.at / line + 1
    }
}
