//! Programs as a core walks them: the op tree flattened into one array, and a cursor over it.
//!
//! A [`Program`](crate::program::Program) nests (repeat blocks, mispredict shadows). The core
//! needs to hold a position in it across cycles without borrowing the program, so the tree is
//! flattened once, when the system is built: every block's ops sit contiguously in one array,
//! and a container op names its body by index range. A [`Cursor`] is a stack of frames
//! (range, position, iterations left); a repeat block is never unrolled, so a program of
//! 10^15 iterations costs one frame.

use crate::program::{Addr, KernelCall, LineFlush, Op, OpKind, OpTag};
use mem_ctrl::pconfig::PconfigCall;
use sim_core::{LINE_BYTES, LineBytes};
use std::fmt::Write as _;

/// A block of ops: `start..end` in [`Flat::nodes`].
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
}

/// One op, flattened.
#[derive(Debug)]
pub(crate) enum Node {
    Load {
        at: Addr,
        len: u8,
    },
    Store {
        at: Addr,
        bytes: Box<[u8]>,
    },
    Flush {
        kind: LineFlush,
        at: Addr,
    },
    Wbinvd,
    Mfence,
    Sfence,
    Prefetch {
        at: Addr,
    },
    SpeculativeLoad {
        at: Addr,
        len: u8,
    },
    Mispredict {
        shadow: Span,
    },
    Compute {
        cycles: u64,
    },
    Barrier {
        id: u32,
    },
    Pconfig {
        call: Box<PconfigCall>,
    },
    Kernel {
        call: Box<KernelCall>,
    },
    /// `times` is 0 when the block can be skipped (no iteration, or a body without any op).
    Repeat {
        times: u64,
        body: Span,
    },
}

/// What the core needs to know about one op, copied out of the program so that the core can
/// act on it while mutating itself (`Copy`, no allocation).
#[derive(Copy, Clone, Debug)]
pub(crate) enum OpView {
    Load {
        at: Addr,
        len: u8,
    },
    /// `len` bytes of `data` (the IR's 1..=64; longer stores are cut to 64).
    Store {
        at: Addr,
        len: u8,
        data: LineBytes,
    },
    Flush {
        kind: LineFlush,
        at: Addr,
    },
    Wbinvd,
    Mfence,
    Sfence,
    Prefetch {
        at: Addr,
    },
    SpeculativeLoad {
        at: Addr,
        len: u8,
    },
    Mispredict {
        shadow: Span,
    },
    Compute {
        cycles: u64,
    },
    Barrier {
        id: u32,
    },
    Pconfig,
    Kernel,
}

impl OpView {
    /// Index into [`OP_KINDS`].
    pub fn kind_index(&self) -> usize {
        match self {
            OpView::Load { .. } => 0,
            OpView::Store { .. } => 1,
            OpView::Flush {
                kind: LineFlush::Clflush,
                ..
            } => 2,
            OpView::Flush {
                kind: LineFlush::Clflushopt,
                ..
            } => 3,
            OpView::Flush {
                kind: LineFlush::Clwb,
                ..
            } => 4,
            OpView::Wbinvd => 5,
            OpView::Mfence => 6,
            OpView::Sfence => 7,
            OpView::Prefetch { .. } => 8,
            OpView::SpeculativeLoad { .. } => 9,
            OpView::Mispredict { .. } => 10,
            OpView::Compute { .. } => 11,
            OpView::Barrier { .. } => 12,
            OpView::Pconfig => 13,
            OpView::Kernel => 14,
        }
    }
}

/// Statistic names of the op kinds, in [`OpView::kind_index`] order.
pub(crate) const OP_KINDS: [&str; 15] = [
    "load",
    "store",
    "clflush",
    "clflushopt",
    "clwb",
    "wbinvd",
    "mfence",
    "sfence",
    "prefetch",
    "speculative_load",
    "mispredict",
    "compute",
    "barrier",
    "pconfig",
    "kernel",
];

/// A flattened program.
#[derive(Debug)]
pub(crate) struct Flat {
    pub nodes: Vec<Node>,
    pub tags: Vec<OpTag>,
    pub root: Span,
}

impl Flat {
    /// Flattens `ops`. Recursion follows the program's nesting depth (as the program's own
    /// `Clone` and `Drop` do).
    pub fn new(ops: &[Op]) -> Flat {
        let mut flat = Flat {
            nodes: Vec::new(),
            tags: Vec::new(),
            root: Span { start: 0, end: 0 },
        };
        flat.root = flat.flatten(ops).0;
        flat
    }

    /// Appends `ops` as one block; returns it and whether it holds any op that does something.
    fn flatten(&mut self, ops: &[Op]) -> (Span, bool) {
        let start = self.nodes.len();
        for op in ops {
            let node = match &op.kind {
                OpKind::Load { at, len } => Node::Load { at: *at, len: *len },
                OpKind::Store { at, bytes } => Node::Store {
                    at: *at,
                    bytes: bytes.clone().into_boxed_slice(),
                },
                OpKind::Flush { kind, at } => Node::Flush {
                    kind: *kind,
                    at: *at,
                },
                OpKind::Wbinvd => Node::Wbinvd,
                OpKind::Mfence => Node::Mfence,
                OpKind::Sfence => Node::Sfence,
                OpKind::Prefetch { at } => Node::Prefetch { at: *at },
                OpKind::SpeculativeLoad { at, len } => Node::SpeculativeLoad { at: *at, len: *len },
                OpKind::Compute { cycles } => Node::Compute { cycles: *cycles },
                OpKind::Barrier { id } => Node::Barrier { id: *id },
                OpKind::Pconfig { call } => Node::Pconfig {
                    call: Box::new(call.clone()),
                },
                OpKind::Kernel(call) => Node::Kernel {
                    call: Box::new(call.clone()),
                },
                // Bodies are appended after this block; patched below.
                OpKind::Mispredict { .. } => Node::Mispredict {
                    shadow: Span { start: 0, end: 0 },
                },
                OpKind::Repeat { .. } => Node::Repeat {
                    times: 0,
                    body: Span { start: 0, end: 0 },
                },
            };
            self.nodes.push(node);
            self.tags.push(op.tag);
        }
        let end = self.nodes.len();
        let mut any = false;
        for (i, op) in ops.iter().enumerate() {
            match &op.kind {
                OpKind::Repeat { times, body } => {
                    let (span, has_op) = self.flatten(body);
                    // A block without any op would spin without issuing: skip it whole.
                    let times = if has_op { *times } else { 0 };
                    any |= times > 0;
                    self.nodes[start + i] = Node::Repeat { times, body: span };
                }
                OpKind::Mispredict { shadow } => {
                    let (span, _) = self.flatten(shadow);
                    self.nodes[start + i] = Node::Mispredict { shadow: span };
                    any = true;
                }
                _ => any = true,
            }
        }
        (Span { start, end }, any)
    }

    /// The op at `i`, copied out (`Repeat` never reaches here: the cursor enters it).
    pub fn view(&self, i: usize) -> OpView {
        match &self.nodes[i] {
            Node::Load { at, len } => OpView::Load { at: *at, len: *len },
            Node::Store { at, bytes } => {
                let len = bytes.len().min(LINE_BYTES);
                let mut data = [0; LINE_BYTES];
                data[..len].copy_from_slice(&bytes[..len]);
                OpView::Store {
                    at: *at,
                    len: len as u8,
                    data,
                }
            }
            Node::Flush { kind, at } => OpView::Flush {
                kind: *kind,
                at: *at,
            },
            Node::Wbinvd => OpView::Wbinvd,
            Node::Mfence => OpView::Mfence,
            Node::Sfence => OpView::Sfence,
            Node::Prefetch { at } => OpView::Prefetch { at: *at },
            Node::SpeculativeLoad { at, len } => OpView::SpeculativeLoad { at: *at, len: *len },
            Node::Mispredict { shadow } => OpView::Mispredict { shadow: *shadow },
            Node::Compute { cycles } => OpView::Compute { cycles: *cycles },
            Node::Barrier { id } => OpView::Barrier { id: *id },
            Node::Pconfig { .. } => OpView::Pconfig,
            Node::Kernel { .. } => OpView::Kernel,
            // Unreachable through the cursor; harmless if it ever were.
            Node::Repeat { .. } => OpView::Compute { cycles: 0 },
        }
    }

    /// A short name of the op at `i`, for dumps.
    pub fn name(&self, i: usize) -> &'static str {
        match &self.nodes[i] {
            Node::Repeat { .. } => "repeat",
            _ => OP_KINDS[self.view(i).kind_index()],
        }
    }

    /// Barrier ids the program can reach (repeat bodies included, mispredict shadows not: a
    /// barrier there ends the shadow and never executes), each once, in first-seen order.
    pub fn barrier_ids(&self) -> Vec<u32> {
        let mut ids = Vec::new();
        self.collect_barriers(self.root, &mut ids);
        ids
    }

    fn collect_barriers(&self, span: Span, ids: &mut Vec<u32>) {
        for i in span.start..span.end {
            match &self.nodes[i] {
                Node::Barrier { id } if !ids.contains(id) => ids.push(*id),
                // A block that never runs holds no barrier the core will reach.
                Node::Repeat { times, body } if *times > 0 => self.collect_barriers(*body, ids),
                _ => {}
            }
        }
    }
}

/// One level of a cursor: a block, the position in it, and iterations left.
#[derive(Copy, Clone, Debug)]
struct Frame {
    span: Span,
    pos: usize,
    left: u64,
    /// The repeat (or nested mispredict) op that opened this frame; `None` for the root.
    opener: Option<usize>,
}

/// A position in a flattened program.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cursor {
    frames: Vec<Frame>,
}

impl Cursor {
    /// A cursor at the start of `span`, run once.
    pub fn new(span: Span) -> Cursor {
        let mut c = Cursor { frames: Vec::new() };
        c.reset(span);
        c
    }

    /// Restarts at `span` (reusing the frame stack's memory).
    pub fn reset(&mut self, span: Span) {
        self.frames.clear();
        self.frames.push(Frame {
            span,
            pos: span.start,
            left: 1,
            opener: None,
        });
    }

    /// The next op to run (never a `Repeat`: blocks are entered and left here), or `None` at
    /// the end. Idempotent once it returns `Some`.
    pub fn peek(&mut self, flat: &Flat) -> Option<usize> {
        loop {
            let f = self.frames.last_mut()?;
            if f.pos >= f.span.end {
                f.left -= 1;
                if f.left > 0 {
                    f.pos = f.span.start;
                } else {
                    self.frames.pop();
                }
                continue;
            }
            let i = f.pos;
            match &flat.nodes[i] {
                Node::Repeat { times, body } => {
                    f.pos += 1;
                    if *times > 0 && body.start < body.end {
                        self.frames.push(Frame {
                            span: *body,
                            pos: body.start,
                            left: *times,
                            opener: Some(i),
                        });
                    }
                }
                _ => return Some(i),
            }
        }
    }

    /// Moves past the op [`Cursor::peek`] returned.
    pub fn advance(&mut self) {
        if let Some(f) = self.frames.last_mut() {
            f.pos += 1;
        }
    }

    /// Runs `span` once, from here, then continues where the cursor was (a nested
    /// mispredicted path inside a shadow). Call after [`Cursor::advance`].
    pub fn enter(&mut self, span: Span, opener: usize) {
        if span.start < span.end {
            self.frames.push(Frame {
                span,
                pos: span.start,
                left: 1,
                opener: Some(opener),
            });
        }
    }

    /// The position as a path: each enclosing repeat with its iteration, then the next op.
    pub fn describe(&self, flat: &Flat, out: &mut String) {
        for f in &self.frames {
            if let Some(op) = f.opener {
                match &flat.nodes[op] {
                    Node::Repeat { times, .. } => {
                        let _ = write!(
                            out,
                            "repeat (tag {}) iteration {} of {} > ",
                            flat.tags[op].0,
                            times - f.left + 1,
                            times
                        );
                    }
                    _ => {
                        let _ = write!(out, "shadow of mispredict (tag {}) > ", flat.tags[op].0);
                    }
                }
            }
        }
        match self.frames.last() {
            Some(f) if f.pos < f.span.end => {
                let _ = write!(
                    out,
                    "op {} (tag {}, {})",
                    f.pos - f.span.start,
                    flat.tags[f.pos].0,
                    flat.name(f.pos)
                );
            }
            Some(_) => out.push_str("end of block"),
            None => out.push_str("end of program"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::Op;

    fn op(tag: u32, kind: OpKind) -> Op {
        Op {
            tag: OpTag(tag),
            kind,
        }
    }

    fn compute(tag: u32) -> Op {
        op(tag, OpKind::Compute { cycles: 1 })
    }

    /// Walks a cursor to the end, collecting tags (at most `max`).
    fn walk(flat: &Flat, max: usize) -> Vec<u32> {
        let mut c = Cursor::new(flat.root);
        let mut out = Vec::new();
        while let Some(i) = c.peek(flat) {
            out.push(flat.tags[i].0);
            c.advance();
            if out.len() == max {
                break;
            }
        }
        out
    }

    #[test]
    fn repeats_are_walked_in_order_without_unrolling() {
        let prog = vec![
            compute(1),
            op(
                2,
                OpKind::Repeat {
                    times: 2,
                    body: vec![
                        compute(3),
                        op(
                            4,
                            OpKind::Repeat {
                                times: 3,
                                body: vec![compute(5)],
                            },
                        ),
                    ],
                },
            ),
            compute(6),
        ];
        let flat = Flat::new(&prog);
        assert_eq!(walk(&flat, 100), [1, 3, 5, 5, 5, 3, 5, 5, 5, 6]);
    }

    #[test]
    fn empty_and_zero_repeats_are_skipped() {
        let prog = vec![
            op(
                1,
                OpKind::Repeat {
                    times: 0,
                    body: vec![compute(2)],
                },
            ),
            op(
                3,
                OpKind::Repeat {
                    times: u64::MAX,
                    body: vec![op(
                        4,
                        OpKind::Repeat {
                            times: 0,
                            body: vec![compute(5)],
                        },
                    )],
                },
            ),
            op(
                6,
                OpKind::Repeat {
                    times: 7,
                    body: vec![],
                },
            ),
            compute(7),
        ];
        let flat = Flat::new(&prog);
        assert_eq!(walk(&flat, 100), [7]);
    }

    #[test]
    fn huge_repeat_describes_its_iteration() {
        let prog = vec![op(
            9,
            OpKind::Repeat {
                times: 1_000_000_000_000_000,
                body: vec![compute(1), compute(2)],
            },
        )];
        let flat = Flat::new(&prog);
        let mut c = Cursor::new(flat.root);
        for _ in 0..5 {
            c.peek(&flat);
            c.advance();
        }
        c.peek(&flat);
        let mut s = String::new();
        c.describe(&flat, &mut s);
        assert_eq!(
            s,
            "repeat (tag 9) iteration 3 of 1000000000000000 > op 1 (tag 2, compute)"
        );
    }

    #[test]
    fn barriers_in_repeats_count_but_not_in_shadows_or_dead_blocks() {
        let prog = vec![
            op(
                1,
                OpKind::Repeat {
                    times: 5,
                    body: vec![op(2, OpKind::Barrier { id: 7 })],
                },
            ),
            op(
                3,
                OpKind::Mispredict {
                    shadow: vec![op(4, OpKind::Barrier { id: 8 })],
                },
            ),
            op(
                5,
                OpKind::Repeat {
                    times: 0,
                    body: vec![op(6, OpKind::Barrier { id: 9 })],
                },
            ),
            op(7, OpKind::Barrier { id: 7 }),
        ];
        assert_eq!(Flat::new(&prog).barrier_ids(), [7]);
    }
}
