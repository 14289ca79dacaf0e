//! The encrypting memory controller of mktme-sim.
pub mod xts;
