//! Every RON example in `docs/` runs (issue 10): the ```` ```ron ```` blocks of each page are
//! read, wrapped into a scenario when their info string marks them as a fragment, validated
//! and run, and must pass. An example that stops working fails here, naming its page and line.
//!
//! Markers, after `ron` in the info string:
//!
//! - none: a whole scenario;
//! - `fragment=machine`: a machine section (or machine file), run as `(machine: X, cores: [])`;
//! - `fragment=fields`: top-level fields of a scenario, run as `(cores: [], X)`;
//! - `files=NAME:PRESET`: before running, a DRAM file `NAME` is written beside the example,
//!   holding DRAM preset `PRESET` (as `mktme-sim dram-trace --print-dram` writes it).

use scenarios::formats::dram_file;
use scenarios::runner::{self, RunOptions};
use scenarios::validate;
use std::path::{Path, PathBuf};

/// One ```ron block: where it starts, its info string's words, its text.
struct Block {
    page: String,
    line: usize,
    markers: Vec<String>,
    text: String,
}

fn blocks(page: &Path) -> Vec<Block> {
    let doc = std::fs::read_to_string(page).unwrap();
    let name = page.file_name().unwrap().to_string_lossy().into_owned();
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    for (i, line) in doc.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut current {
            None => {
                if let Some(info) = trimmed.strip_prefix("```ron") {
                    current = Some(Block {
                        page: name.clone(),
                        line: i + 1,
                        markers: info.split_whitespace().map(str::to_owned).collect(),
                        text: String::new(),
                    });
                }
            }
            Some(block) => {
                if trimmed == "```" {
                    out.extend(current.take());
                } else {
                    block.text.push_str(line);
                    block.text.push('\n');
                }
            }
        }
    }
    assert!(current.is_none(), "{name}: a ```ron block is not closed");
    out
}

/// The text to run for a block, and the files it needs.
fn scenario_text(b: &Block) -> Result<(String, Vec<(String, String)>), String> {
    let mut text = b.text.clone();
    let mut files = Vec::new();
    for m in &b.markers {
        match m.split_once('=') {
            Some(("fragment", "machine")) => text = format!("(machine: {text}, cores: [])"),
            Some(("fragment", "fields")) => text = format!("(cores: [], {text})"),
            Some(("files", spec)) => {
                for f in spec.split(',') {
                    let (name, preset) = f
                        .split_once(':')
                        .ok_or_else(|| format!("files={spec}: expected NAME:PRESET"))?;
                    let config = dram_file::load(preset, Path::new(""))
                        .map_err(|e| format!("files={spec}: {e}"))?;
                    let ron = dram_file::to_ron(config.params()).map_err(|e| e.to_string())?;
                    files.push((name.to_owned(), ron));
                }
            }
            _ => return Err(format!("unknown marker `{m}`")),
        }
    }
    Ok((text, files))
}

fn temp_dir(n: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mktme-sim-docs-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_ron_example_in_docs_runs() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&docs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    let mut problems = Vec::new();
    let mut ran = 0;
    for page in &pages {
        for (n, b) in blocks(page).into_iter().enumerate() {
            let at = format!("{}:{}", b.page, b.line);
            let (text, files) = match scenario_text(&b) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(format!("{at}: {e}"));
                    continue;
                }
            };
            let dir = temp_dir(ran * 100 + n);
            for (name, contents) in &files {
                std::fs::write(dir.join(name), contents).unwrap();
            }
            let file = dir.join("example.ron");
            std::fs::write(&file, &text).unwrap();
            let result = validate::load(&file)
                .map_err(|e| format!("does not validate: {e}"))
                .and_then(|s| {
                    runner::run(&s, &RunOptions::default()).map_err(|e| format!("cannot run: {e}"))
                });
            match result {
                Ok(r) if r.passed => {}
                Ok(r) => {
                    let failed: Vec<String> = r
                        .expectations
                        .iter()
                        .filter(|e| !e.ok)
                        .map(|e| format!("    {}\n      observed: {}", e.expect, e.observed))
                        .collect();
                    problems.push(format!(
                        "{at}: did not pass (end: {}):\n{}",
                        r.end.reason,
                        failed.join("\n")
                    ));
                }
                Err(e) => problems.push(format!("{at}: {e}")),
            }
            let _ = std::fs::remove_dir_all(&dir);
            ran += 1;
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert!(ran >= 7, "only {ran} examples found in docs/");
}

/// The scenario format's page has an example of every section the format has.
#[test]
fn the_format_page_shows_every_new_word() {
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scenario-format.md");
    let all: String = blocks(&page).into_iter().map(|b| b.text).collect();
    for word in [
        "index:",
        "processes:",
        "process:",
        "attacker: true",
        "share_key(",
        "expect_not:",
        "not:",
        "same_as:",
        "not_same_as:",
        "written_through:",
        "not_written_through:",
        "lost:",
        "written:",
        "attacker(saw:",
        "label:",
        "bus_plaintext",
        "bus_writes",
        "dump_plaintext",
        "interposer:",
        "replay(",
        "splice(",
        "bit_flip(",
        "bad_ram:",
        "cold_boot:",
        "chain:",
    ] {
        assert!(
            all.contains(word),
            "no example on docs/scenario-format.md uses `{word}`"
        );
    }
}
