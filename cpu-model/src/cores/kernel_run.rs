//! A system call in progress on a core: which of the kernel's steps comes next, and what its
//! PCONFIGs returned. Its own module because both the issue stage (which holds it in
//! `Stage::Kernel`) and the serializing ops (which advance it) name it.

use crate::kernel::Syscall;
use mem_ctrl::pconfig::PconfigOutcome;
use sim_core::Cycle;

/// A system call's progress through its steps.
#[derive(Debug)]
pub(super) struct KernelRun {
    pub(super) syscall: Syscall,
    pub(super) next: usize,
    pub(super) outcomes: Vec<PconfigOutcome>,
    pub(super) step: KStep,
}

/// Where a system call stands between two of the kernel's steps.
#[derive(Debug)]
pub(super) enum KStep {
    Start,
    /// A flush or zeroing store in flight.
    Wait,
    /// A PCONFIG executed; `left` retries remain.
    Pconfig {
        done: Cycle,
        outcome: PconfigOutcome,
        left: u32,
    },
    /// A retry waits for the lock (DEVICE_BUSY) or the next cycle (ENTROPY_ERROR).
    Retry {
        at: Cycle,
        left: u32,
    },
}
