//! Programs as a core walks them: the op tree flattened into one array, and a cursor over it.
//!
//! A [`Program`](crate::program::Program) nests (repeat blocks, mispredict shadows). The core
//! needs to hold a position in it across cycles without borrowing the program, so the tree is
//! flattened once, when the system is built: every block's ops sit contiguously in one array,
//! and a container op names its body by index range. A [`Cursor`] is a stack of frames
//! (range, position, iterations left); a repeat block is never unrolled, so a program of
//! 10^15 iterations costs one frame.
//!
//! Every other op is kept as the program's own [`OpKind`], so a new op needs no enum here.
//! The core reads an op by index and copies out the fields it needs (all `Copy` but a
//! store's bytes, which it copies into a line buffer with [`store_data`]), so it can act on
//! the op while it changes itself, without allocating.

use crate::program::{IndexTerm, LineFlush, Op, OpKind, OpTag};
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
    /// An op as the program has it; never a `Mispredict` or a `Repeat`, which become the
    /// variants below.
    Op(OpKind),
    /// A mispredicted branch; `shadow` is its wrong path.
    Mispredict { shadow: Span },
    /// `times` is 0 when the block can be skipped (no iteration, or a body without any op).
    Repeat { times: u64, body: Span },
}

/// Statistic names of the op kinds, in [`Node::kind_index`] order.
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

const MISPREDICT: usize = 10;

impl Node {
    /// Index into [`OP_KINDS`]; `None` for a repeat block, which is walked, never issued.
    pub(super) fn kind_index(&self) -> Option<usize> {
        let op = match self {
            Node::Op(op) => op,
            Node::Mispredict { .. } => return Some(MISPREDICT),
            Node::Repeat { .. } => return None,
        };
        Some(match op {
            OpKind::Load { .. } => 0,
            OpKind::Store { .. } => 1,
            OpKind::Flush {
                kind: LineFlush::Clflush,
                ..
            } => 2,
            OpKind::Flush {
                kind: LineFlush::Clflushopt,
                ..
            } => 3,
            OpKind::Flush {
                kind: LineFlush::Clwb,
                ..
            } => 4,
            OpKind::Wbinvd => 5,
            OpKind::Mfence => 6,
            OpKind::Sfence => 7,
            OpKind::Prefetch { .. } => 8,
            OpKind::SpeculativeLoad { .. } => 9,
            OpKind::Mispredict { .. } => MISPREDICT,
            OpKind::Compute { .. } => 11,
            OpKind::Barrier { .. } => 12,
            OpKind::Pconfig { .. } => 13,
            OpKind::Kernel(_) => 14,
            OpKind::Repeat { .. } => return None,
            OpKind::Indexed(_) => unreachable!("flattening unwraps indexed ops"),
        })
    }
}

/// A store's bytes as the core buffers them: the length (the IR's 1..=64; longer stores are
/// cut to 64) and the bytes in a line-sized buffer.
pub(crate) fn store_data(bytes: &[u8]) -> (u8, LineBytes) {
    let len = bytes.len().min(LINE_BYTES);
    let mut data = [0; LINE_BYTES];
    data[..len].copy_from_slice(&bytes[..len]);
    (len as u8, data)
}

/// A flattened program.
#[derive(Debug)]
pub(crate) struct Flat {
    pub nodes: Vec<Node>,
    pub tags: Vec<OpTag>,
    /// Per node: the terms its address and data step by, for an [`OpKind::Indexed`] op.
    pub steps: Vec<Option<Box<Steps>>>,
    pub root: Span,
}

/// How an op's address and data step with the iterations of enclosing repeats.
#[derive(Debug)]
pub(crate) struct Steps {
    pub addr: Vec<IndexTerm>,
    pub data: Vec<IndexTerm>,
}

impl Flat {
    /// Flattens `ops`. Recursion follows the program's nesting depth (as the program's own
    /// `Clone` and `Drop` do).
    pub(super) fn new(ops: &[Op]) -> Flat {
        let mut flat = Flat {
            nodes: Vec::new(),
            tags: Vec::new(),
            steps: Vec::new(),
            root: Span { start: 0, end: 0 },
        };
        flat.root = flat.flatten(ops).0;
        flat
    }

    /// Appends `ops` as one block; returns it and whether it holds any op that does something.
    fn flatten(&mut self, ops: &[Op]) -> (Span, bool) {
        let start = self.nodes.len();
        let unset = Span { start: 0, end: 0 };
        for op in ops {
            let mut steps = None;
            let node = match &op.kind {
                // Bodies are appended after this block; patched below.
                OpKind::Mispredict { .. } => Node::Mispredict { shadow: unset },
                OpKind::Repeat { .. } => Node::Repeat {
                    times: 0,
                    body: unset,
                },
                OpKind::Indexed(indexed) => {
                    steps = Some(Box::new(Steps {
                        addr: indexed.addr.clone(),
                        data: indexed.data.clone(),
                    }));
                    Node::Op(indexed.op.clone())
                }
                leaf => Node::Op(leaf.clone()),
            };
            self.nodes.push(node);
            self.tags.push(op.tag);
            self.steps.push(steps);
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

    /// A short name of the op at `i`, for dumps.
    pub(super) fn name(&self, i: usize) -> &'static str {
        self.nodes[i].kind_index().map_or("repeat", |k| OP_KINDS[k])
    }

    /// Barrier ids the program can reach (repeat bodies included, mispredict shadows not: a
    /// barrier there ends the shadow and never executes), each once, in first-seen order.
    pub(super) fn barrier_ids(&self) -> Vec<u32> {
        let mut ids = Vec::new();
        self.collect_barriers(self.root, &mut ids);
        ids
    }

    fn collect_barriers(&self, span: Span, ids: &mut Vec<u32>) {
        for i in span.start..span.end {
            match &self.nodes[i] {
                Node::Op(OpKind::Barrier { id }) if !ids.contains(id) => ids.push(*id),
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
    pub(super) fn new(span: Span) -> Cursor {
        let mut c = Cursor { frames: Vec::new() };
        c.reset(span);
        c
    }

    /// Restarts at `span` (reusing the frame stack's memory).
    pub(super) fn reset(&mut self, span: Span) {
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
    pub(super) fn peek(&mut self, flat: &Flat) -> Option<usize> {
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
    pub(super) fn advance(&mut self) {
        if let Some(f) = self.frames.last_mut() {
            f.pos += 1;
        }
    }

    /// Runs `span` once, from here, then continues where the cursor was (a nested
    /// mispredicted path inside a shadow). Call after [`Cursor::advance`].
    pub(super) fn enter(&mut self, span: Span, opener: usize) {
        if span.start < span.end {
            self.frames.push(Frame {
                span,
                pos: span.start,
                left: 1,
                opener: Some(opener),
            });
        }
    }

    /// The iteration (0 in the first) of the enclosing repeat whose op has tag `repeat`, if
    /// this cursor is inside it.
    pub(super) fn iteration(&self, flat: &Flat, repeat: OpTag) -> Option<u64> {
        self.frames.iter().rev().find_map(|f| {
            let op = f.opener?;
            match flat.nodes[op] {
                Node::Repeat { times, .. } if flat.tags[op] == repeat => Some(times - f.left),
                _ => None,
            }
        })
    }

    /// The position as a path: each enclosing repeat with its iteration, then the next op.
    pub(super) fn describe(&self, flat: &Flat, out: &mut String) {
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
    use crate::program::{Addr, Op};
    use sim_core::PhysAddr;

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
    fn indexed_ops_are_unwrapped_and_iterations_counted() {
        let load = OpKind::Load {
            at: Addr::Phys(PhysAddr::new(0x40)),
            len: 8,
        };
        let indexed = OpKind::Indexed(Box::new(crate::program::Indexed {
            op: load.clone(),
            addr: vec![IndexTerm {
                repeat: OpTag(1),
                step: 64,
            }],
            data: Vec::new(),
        }));
        let prog = vec![op(
            1,
            OpKind::Repeat {
                times: 2,
                body: vec![op(
                    2,
                    OpKind::Repeat {
                        times: 3,
                        body: vec![op(3, indexed)],
                    },
                )],
            },
        )];
        let flat = Flat::new(&prog);
        let i = flat.tags.iter().position(|t| t.0 == 3).unwrap();
        assert!(matches!(&flat.nodes[i], Node::Op(op) if *op == load));
        assert_eq!(flat.steps[i].as_ref().unwrap().addr[0].step, 64);
        let mut c = Cursor::new(flat.root);
        let mut seen = Vec::new();
        while c.peek(&flat).is_some() {
            seen.push((
                c.iteration(&flat, OpTag(1)).unwrap(),
                c.iteration(&flat, OpTag(2)).unwrap(),
            ));
            c.advance();
        }
        assert_eq!(seen, [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]);
        assert_eq!(c.iteration(&flat, OpTag(1)), None);
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
    fn ops_stay_the_programs_own_and_containers_become_spans() {
        let at = Addr::Phys(PhysAddr::new(0x40));
        let prog = vec![
            op(1, OpKind::Load { at, len: 8 }),
            op(
                2,
                OpKind::Store {
                    at,
                    bytes: vec![7; 70],
                },
            ),
            op(
                3,
                OpKind::Flush {
                    kind: LineFlush::Clwb,
                    at,
                },
            ),
            op(
                4,
                OpKind::Mispredict {
                    shadow: vec![compute(5)],
                },
            ),
            op(
                6,
                OpKind::Repeat {
                    times: 2,
                    body: vec![compute(7)],
                },
            ),
        ];
        let flat = Flat::new(&prog);
        for (node, op) in flat.nodes.iter().zip(&prog).take(3) {
            assert!(matches!(node, Node::Op(kind) if *kind == op.kind));
        }
        assert!(
            matches!(flat.nodes[3], Node::Mispredict { shadow } if flat.tags[shadow.start] == OpTag(5))
        );
        assert!(
            matches!(flat.nodes[4], Node::Repeat { times: 2, body } if flat.tags[body.start] == OpTag(7))
        );
        let names: Vec<_> = (0..5).map(|i| flat.name(i)).collect();
        assert_eq!(names, ["load", "store", "clwb", "mispredict", "repeat"]);
        // A store longer than a line is cut to it.
        let (len, data) = store_data(&[7; 70]);
        assert_eq!((len, data), (64, [7; LINE_BYTES]));
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
