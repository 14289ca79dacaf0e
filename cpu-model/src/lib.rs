//! Cores, programs, store buffer, address translation, the kernel layer, and the assembly of a
//! whole machine from `cache-model` and `mem-ctrl`.
//!
//! Not built yet: this crate is delivered by issue 5. It is the only crate that depends on both
//! `cache-model` and `mem-ctrl`: it wires caches to memory controllers.
