//! KeyID-tagged set-associative caches and the coherent hierarchy (MESI), cache-control
//! instructions, prefetchers and the coherency checker.
//!
//! Not built yet: this crate is delivered by issue 4. It exists now so that the workspace has
//! its final shape and the dependency direction (`cache-model -> sim-core`, never `mem-ctrl`)
//! is fixed from the start.
