//! The RON scenario format, its validation into typed configs, the runner, expectations and the
//! JSON report.
//!
//! Not built yet: this crate is delivered by issue 5. It sits at the top of the dependency
//! chain: `scenarios -> cpu-model -> {cache-model, mem-ctrl} -> sim-core`.
