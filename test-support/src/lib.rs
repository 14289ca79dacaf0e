//! What the workspace's test suites share (a dev-dependency only; no model crate uses it).
//!
//! # How many cases a property test runs
//!
//! One convention for every property suite (issue 12): proptest's own `PROPTEST_CASES` sets the
//! number of cases, and no suite overrides it with a hard-coded count. A suite whose cases are
//! expensive runs fewer by default, so that `cargo test --workspace` (the CI) stays fast; that
//! default is written once, at the suite, as the argument of [`proptest_config`]:
//!
//! ```text
//! proptest! {
//!     // 64 cases in CI; `PROPTEST_CASES=100000 cargo test --release --test ...` runs deep.
//!     #![proptest_config(test_support::proptest_config(64))]
//!
//!     #[test]
//!     fn addition_commutes(a in 0u32..1000, b in 0u32..1000) {
//!         prop_assert_eq!(a + b, b + a);
//!     }
//! }
//! ```
//!
//! ```
//! // Without PROPTEST_CASES in the environment, the suite's own default.
//! # if std::env::var_os("PROPTEST_CASES").is_none() {
//! assert_eq!(test_support::proptest_config(64).cases, 64);
//! # }
//! ```
//!
//! Suites without a `proptest_config` follow the convention already: proptest's default
//! configuration reads `PROPTEST_CASES` (256 cases when it is not set).

use proptest::test_runner::Config;

/// Proptest's default configuration (which reads `PROPTEST_CASES` and proptest's other
/// environment variables), with `ci_default` cases when `PROPTEST_CASES` is not set.
pub fn proptest_config(ci_default: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = ci_default;
    }
    config
}

/// The number of cases [`proptest_config`] gives: `PROPTEST_CASES` when set, else
/// `ci_default`. For suites that loop over generated cases by hand.
pub fn proptest_cases(ci_default: u32) -> u32 {
    proptest_config(ci_default).cases
}
