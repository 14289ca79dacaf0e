//! Many scenario files at once, as `mktme-sim run` and `mktme-sim check` take them: the files
//! the command line names (folders searched for `.ron` files, in name order), every file
//! validated before anything runs, and the runs in parallel with their reports in input order.
//!
//! Validating everything first means a typo in the tenth file is reported before the first
//! nine runs, not after them (`run` then runs the valid files and says which were not). Each scenario runs on its own single-threaded model, so running several at once
//! changes nothing in any report, and putting the reports back in input order makes the
//! output independent of the thread count.

use crate::measure::{MeasureOptions, Measured};
use crate::report::ScenarioReport;
use crate::runner::{self, RunError, RunOptions};
use crate::scenario::Scenario;
use crate::validate::{self, Override, ScenarioError};
use rayon::prelude::*;
use std::io;
use std::path::{Path, PathBuf};

/// Why the scenario files could not be found.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// A path given cannot be read.
    #[error("{}: cannot read: {error}", shown_path(path))]
    Read {
        /// The path.
        path: PathBuf,
        /// The operating system's error (part of the message, so not also a `source()`).
        error: io::Error,
    },
    /// A folder cannot be listed.
    #[error("{}: cannot list: {error}", shown_path(path))]
    List {
        /// The folder.
        path: PathBuf,
        /// The operating system's error (part of the message, so not also a `source()`).
        error: io::Error,
    },
    /// A folder given holds no `.ron` file, at any depth.
    #[error("{}: no .ron scenario files in this folder", shown_path(path))]
    Empty {
        /// The folder.
        path: PathBuf,
    },
}

/// A path as a message shows it ([`sim_core::text`]).
fn shown_path(path: &Path) -> String {
    sim_core::text::shown_max(&path.display().to_string(), crate::limits::FILE_CHARS_SHOWN)
        .into_owned()
}

/// Every scenario file named by `paths`: files as given, folders searched recursively for
/// `.ron` files, sorted by path.
pub fn scenario_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, FilesError> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|error| FilesError::Read {
            path: path.clone(),
            error,
        })?;
        if meta.is_dir() {
            let before = files.len();
            collect_ron(path, &mut files)?;
            if files.len() == before {
                return Err(FilesError::Empty { path: path.clone() });
            }
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Appends the `.ron` files below `dir` to `out`, each folder's entries in name order.
fn collect_ron(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), FilesError> {
    let list_error = |error| FilesError::List {
        path: dir.to_owned(),
        error,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(list_error)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<_>>()
        .map_err(list_error)?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_ron(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "ron") {
            out.push(path);
        }
    }
    Ok(())
}

/// Loads and validates every file with `overrides` applied: each file's scenario or error, in
/// order.
pub fn load_each(
    files: &[PathBuf],
    overrides: &[Override],
) -> Vec<Result<Scenario, ScenarioError>> {
    files
        .iter()
        .map(|f| validate::load_with(f, overrides))
        .collect()
}

/// Loads and validates every file: all the scenarios, in order, or every file's error.
pub fn load_all(files: &[PathBuf]) -> Result<Vec<Scenario>, Vec<ScenarioError>> {
    let (ok, errors): (Vec<_>, Vec<_>) = load_each(files, &[]).into_iter().partition(Result::is_ok);
    if errors.is_empty() {
        Ok(ok.into_iter().map(Result::unwrap).collect())
    } else {
        Err(errors.into_iter().map(Result::unwrap_err).collect())
    }
}

/// Runs every scenario, `jobs` at a time (0: one per available core); each run's report or
/// error, in the order of `scenarios` whatever order the runs finish in.
pub fn run_all(
    scenarios: &[Scenario],
    options: &RunOptions,
    jobs: usize,
) -> Result<Vec<Result<ScenarioReport, RunError>>, rayon::ThreadPoolBuildError> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    // `collect` keeps the input order.
    Ok(pool.install(|| {
        scenarios
            .par_iter()
            .map(|s| runner::run(s, options))
            .collect()
    }))
}

/// One scenario's outcome in [`run_all_measured`]: its report and, when asked for, its
/// measurements.
pub type MeasuredRun = Result<(ScenarioReport, Option<Measured>), RunError>;

/// [`run_all`], each run also measured ([`runner::run_measured`]) when `measure` is given.
pub fn run_all_measured(
    scenarios: &[Scenario],
    options: &RunOptions,
    jobs: usize,
    measure: Option<MeasureOptions>,
) -> Result<Vec<MeasuredRun>, rayon::ThreadPoolBuildError> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    Ok(pool.install(|| {
        scenarios
            .par_iter()
            .map(|s| runner::run_measured(s, options, measure))
            .collect()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_give_their_ron_files_in_name_order() {
        let dir = std::env::temp_dir().join(format!("scenarios-batch-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("b/deeper")).unwrap();
        std::fs::create_dir_all(dir.join("empty")).unwrap();
        for f in ["b/deeper/z.ron", "b/a.ron", "c.ron", "notes.txt"] {
            std::fs::write(dir.join(f), "()").unwrap();
        }
        let files = scenario_files(std::slice::from_ref(&dir)).unwrap();
        assert_eq!(
            files,
            [
                dir.join("b/a.ron"),
                dir.join("b/deeper/z.ron"),
                dir.join("c.ron")
            ]
        );
        let e = scenario_files(&[dir.join("empty")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: no .ron scenario files in this folder",
                dir.join("empty").display()
            )
        );
        let e = scenario_files(&[dir.join("missing")]).unwrap_err();
        assert!(e.to_string().contains("missing: cannot read: "), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
