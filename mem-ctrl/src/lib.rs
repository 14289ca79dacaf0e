//! The encrypting memory controller of mktme-sim (being built: the AES-XTS engine and DRAM
//! timing first).
pub mod dram;
pub mod xts;
