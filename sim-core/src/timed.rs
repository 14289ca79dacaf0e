//! Timed components: what every part of the model that lives in simulated time can say about
//! itself, so that a run that stops (a deadlock, `cycles_max`) can walk all of them and show
//! what is stuck.
//!
//! ```text
//!   dump_component("machine", &machine, now, &mut out)
//!     machine            describe()        work in flight, next event
//!     ├─ caches          visit_parts()     MSHRs per cache, write-back buffer, outbox
//!     └─ memory                            pending PCONFIG update, responses waiting
//!        └─ memory controller 0            requests accepted, with KeyID, address, R/W
//!           └─ memory controller 0 DRAM    read/write queues, command queues, refresh, ...
//! ```
//!
//! The walk is depth first, in the order each component lists its parts, and every
//! description iterates in a fixed order (queues front to back, tables by slot or by id, never
//! a hash map's order): the same run gives the same dump, byte for byte.

use crate::time::Cycle;
use std::fmt;

/// A part of the model that lives in simulated time: a core, the cache hierarchy, the memory
/// system, one memory controller and its DRAM model, a whole machine.
///
/// Each cycle is one of the component's own clock (a core cycle for most; a DRAM model counts
/// DRAM cycles), and each description says which.
///
/// # Why there is no `tick` here
///
/// The components do step, but not with one signature: a core needs the machine, the kernel
/// and the barriers for its cycle, the hierarchy hands out core responses, the memory system
/// memory responses, a DRAM model completions in DRAM cycles. Folding those into one method
/// (an associated input/output type per component) would give them a common name and nothing
/// else: no caller could step a `dyn TimedComponent`, because the run loops step each concrete
/// component in an order the model's determinism depends on (memory, then caches, then cores
/// in core order). So stepping stays with each component, and this trait holds what every
/// component can answer alike: when it next needs a step, whether it holds work, what its
/// state is, and which timed parts it is made of.
pub trait TimedComponent {
    /// The first cycle, of the component's own clock, at which stepping it can change
    /// something by itself; [`Cycle::NEVER`] when only something from outside can (a request,
    /// a response, a barrier release).
    fn next_event_cycle(&self) -> Cycle;

    /// True while it holds work it has not finished: anything queued, in flight, or waiting
    /// to be handed on.
    fn has_work(&self) -> bool;

    /// Appends its own state (not its parts') to `out`, in words: what is queued, in flight or
    /// waited for, with the addresses, request ids and cycles a reader needs to see what is
    /// stuck. One line, or several without a trailing newline. `now` is the run's current
    /// cycle (core cycles in a whole system); a component with a clock of its own describes
    /// itself as of its last step.
    fn describe(&self, now: Cycle, out: &mut String);

    /// Calls `visit` with each part that is a timed component of its own, and the name a dump
    /// gives it (`"memory controller 0"`), in a fixed order. None by default.
    fn visit_parts(&self, visit: &mut dyn FnMut(&str, &dyn TimedComponent)) {
        let _ = visit;
    }
}

/// Appends a dump entry `(name, state)` for `component`, then, depth first, one for each of its
/// parts (see [`TimedComponent::visit_parts`]).
///
/// ```
/// use sim_core::{Cycle, OrNever, TimedComponent, dump_component};
///
/// /// A queue of line addresses that only an outside step drains.
/// struct Queue(Vec<u64>);
///
/// impl TimedComponent for Queue {
///     fn next_event_cycle(&self) -> Cycle {
///         Cycle::NEVER
///     }
///     fn has_work(&self) -> bool {
///         !self.0.is_empty()
///     }
///     fn describe(&self, _now: Cycle, out: &mut String) {
///         let next = OrNever(self.next_event_cycle());
///         out.push_str(&format!("{:x?}; next event {next}", self.0));
///     }
/// }
///
/// /// Two queues, each a part of its own.
/// struct Pair(Queue, Queue);
///
/// impl TimedComponent for Pair {
///     fn next_event_cycle(&self) -> Cycle {
///         self.0.next_event_cycle().min(self.1.next_event_cycle())
///     }
///     fn has_work(&self) -> bool {
///         self.0.has_work() || self.1.has_work()
///     }
///     fn describe(&self, _now: Cycle, out: &mut String) {
///         out.push_str(if self.has_work() { "busy" } else { "idle" });
///     }
///     fn visit_parts(&self, visit: &mut dyn FnMut(&str, &dyn TimedComponent)) {
///         visit("left", &self.0);
///         visit("right", &self.1);
///     }
/// }
///
/// let mut dump = Vec::new();
/// let pair = Pair(Queue(vec![0x40]), Queue(vec![]));
/// dump_component("pair", &pair, Cycle::new(7), &mut dump);
/// assert_eq!(dump, [
///     ("pair".to_owned(), "busy".to_owned()),
///     ("left".to_owned(), "[40]; next event never".to_owned()),
///     ("right".to_owned(), "[]; next event never".to_owned()),
/// ]);
/// ```
pub fn dump_component(
    name: &str,
    component: &dyn TimedComponent,
    now: Cycle,
    out: &mut Vec<(String, String)>,
) {
    let mut state = String::new();
    component.describe(now, &mut state);
    out.push((name.to_owned(), state));
    component.visit_parts(&mut |part, c| dump_component(part, c, now, out));
}

/// Shows a cycle, or `never` for [`Cycle::NEVER`]: how descriptions print a next event.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct OrNever(pub Cycle);

impl fmt::Display for OrNever {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == Cycle::NEVER {
            f.write_str("never")
        } else {
            write!(f, "{}", self.0)
        }
    }
}
