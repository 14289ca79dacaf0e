//! The encrypting memory controller of mktme-sim (being built: the AES-XTS engine first).
pub mod xts;
