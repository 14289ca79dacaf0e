//! Checks that need every core's ops read first: each key a call uses is added by some
//! `add_key`, and each barrier is reached by at least two cores (else it waits forever).

use super::helpers::quoted_list;
use super::{ScenarioError, Validator};
use crate::scenario::Location;
use std::collections::BTreeSet;

/// A barrier, gathered from the ops that use it.
#[derive(Clone, Debug)]
pub(super) struct BarrierInfo {
    /// Its name in the file.
    pub(super) name: String,
    /// Where an op first uses it.
    pub(super) first: Location,
    /// Cores that reach it outside a mispredict shadow.
    pub(super) cores: BTreeSet<usize>,
}

impl Validator<'_> {
    pub(super) fn check_keys(&self) -> Result<(), ScenarioError> {
        for (name, path) in &self.used_keys {
            if !self.added_keys.contains(name) {
                let known: BTreeSet<&str> = self.added_keys.iter().map(String::as_str).collect();
                let known = if known.is_empty() {
                    "the scenario adds no keys (add_key(key: \"...\", payload: \"...\"))".to_owned()
                } else {
                    format!("keys the scenario adds: {}", quoted_list(known))
                };
                return Err(self.err(
                    path,
                    format!("no add_key in the scenario adds key `{name}`; {known}"),
                ));
            }
        }
        Ok(())
    }

    pub(super) fn check_barriers(&self) -> Result<(), ScenarioError> {
        for b in &self.barriers {
            if let [only] = b.cores.iter().copied().collect::<Vec<_>>().as_slice() {
                return Err(ScenarioError {
                    file: self.file.to_owned(),
                    place: Some(b.first),
                    message: format!(
                        "barrier `{}` is used by core {only} only: it would wait forever; \
                         expected it on at least two cores",
                        b.name
                    ),
                });
            }
        }
        Ok(())
    }
}
