//! A sweep's results: one row per point (its index, the axis values, then the metrics), and
//! the three files a sweep writes: `results.jsonl` (one JSON object per line, keys in column
//! order), `results.csv` (the same columns) and `sweep.json` (the manifest: which sweep, how
//! many points, the columns, and for a shard which one).
//!
//! Both result files are rendered from the rows alone, in point order, so the bytes depend on
//! nothing but the points' results: a run with any `--jobs`, and shards merged, write the same
//! files. [`Table::read_dir`] reads a shard's files back for `merge`.

use serde_json::{Map, Value};
use std::path::Path;

/// A sweep's results.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The manifest.
    pub manifest: Manifest,
    /// The axis columns (paths), in order.
    pub axes: Vec<String>,
    /// The metric columns, in order.
    pub metrics: Vec<String>,
    /// The rows, in point order.
    pub rows: Vec<Row>,
}

/// What `sweep.json` says.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Always `"mktme-sim-sweep"`.
    pub format: String,
    /// The format's version.
    pub version: u32,
    /// The sweep's name.
    pub sweep: String,
    /// A hash of the sweep file's text (FNV-1a, 64 bits, hex): shards of different files do
    /// not merge.
    pub file_hash: String,
    /// Points in the whole sweep.
    pub points: u64,
    /// The axis columns.
    pub axes: Vec<String>,
    /// The metric columns.
    pub metrics: Vec<String>,
    /// `I/N` for a shard's output; absent for a whole sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

/// One point's row.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The point's index in the whole sweep.
    pub point: u64,
    /// Every column's value, by name (axes and metrics).
    pub values: Map<String, Value>,
}

/// A results folder that cannot be read or does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TableError(pub String);

/// The text of a cell: a string as it is, anything else as JSON, null as nothing.
pub fn cell_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

/// FNV-1a over `text`, as 16 hex digits.
pub fn text_hash(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

impl Row {
    /// The value of column `name`.
    pub fn cell(&self, name: &str) -> Option<&Value> {
        self.values.get(name).filter(|v| !v.is_null())
    }

    /// The value of column `name` as a number (booleans are not).
    pub fn number(&self, name: &str) -> Option<f64> {
        self.cell(name).and_then(Value::as_f64)
    }
}

impl Table {
    /// The columns in order: `point`, the axes, the metrics.
    pub fn columns(&self) -> Vec<&str> {
        std::iter::once("point")
            .chain(self.axes.iter().map(String::as_str))
            .chain(self.metrics.iter().map(String::as_str))
            .collect()
    }

    /// Metrics with a number in every row that has them (booleans and texts left out).
    pub fn numeric_metrics(&self) -> Vec<String> {
        self.metrics
            .iter()
            .filter(|m| {
                self.rows.iter().any(|r| r.number(m).is_some())
                    && self
                        .rows
                        .iter()
                        .all(|r| r.cell(m).is_none_or(Value::is_number))
            })
            .cloned()
            .collect()
    }

    /// Whether axis `a` takes only numbers.
    pub fn axis_is_numeric(&self, a: usize) -> bool {
        self.rows
            .iter()
            .all(|r| r.cell(&self.axes[a]).is_none_or(Value::is_number))
    }

    /// Axis `a`'s distinct values, in order of first appearance.
    pub fn axis_values(&self, a: usize) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        for r in &self.rows {
            if let Some(v) = r.cell(&self.axes[a])
                && !out.contains(v)
            {
                out.push(v.clone());
            }
        }
        out
    }

    /// `results.jsonl`: one object per row, keys in column order.
    pub fn jsonl(&self) -> String {
        let mut out = String::new();
        for r in &self.rows {
            out.push_str(&format!("{{\"point\":{}", r.point));
            for c in self.axes.iter().chain(&self.metrics) {
                let v = r.values.get(c).unwrap_or(&Value::Null);
                out.push(',');
                out.push_str(&Value::String(c.clone()).to_string());
                out.push(':');
                out.push_str(&v.to_string());
            }
            out.push_str("}\n");
        }
        out
    }

    /// `results.csv`: a header, then one line per row.
    pub fn csv(&self) -> String {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        w.write_record(self.columns()).expect("writes to memory");
        for r in &self.rows {
            let mut record = vec![r.point.to_string()];
            for c in self.axes.iter().chain(&self.metrics) {
                record.push(r.values.get(c).map_or_else(String::new, cell_text));
            }
            w.write_record(&record).expect("writes to memory");
        }
        String::from_utf8(w.into_inner().expect("writes to memory")).expect("UTF-8 cells")
    }

    /// `sweep.json`.
    pub fn manifest_json(&self) -> String {
        let mut text =
            serde_json::to_string_pretty(&self.manifest).expect("the manifest serializes");
        text.push('\n');
        text
    }

    /// Writes the three files into `dir`; the paths written.
    pub fn write_dir(&self, dir: &Path) -> Result<Vec<std::path::PathBuf>, TableError> {
        let files = [
            ("results.jsonl", self.jsonl()),
            ("results.csv", self.csv()),
            ("sweep.json", self.manifest_json()),
        ];
        files
            .into_iter()
            .map(|(name, text)| {
                let path = dir.join(name);
                crate::output::write_file(&path, text.as_bytes()).map_err(TableError)?;
                Ok(path)
            })
            .collect()
    }

    /// Reads a folder a sweep (or a shard of one) wrote.
    pub fn read_dir(dir: &Path) -> Result<Table, TableError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path)
                .map_err(|e| TableError(format!("{}: cannot read: {e}", path.display())))
        };
        let manifest: Manifest = serde_json::from_str(&read("sweep.json")?).map_err(|e| {
            TableError(format!(
                "{}: not a sweep manifest: {e}",
                dir.join("sweep.json").display()
            ))
        })?;
        if manifest.format != "mktme-sim-sweep" {
            return Err(TableError(format!(
                "{}: not a sweep manifest (format `{}`)",
                dir.join("sweep.json").display(),
                manifest.format
            )));
        }
        let mut rows = Vec::new();
        for (i, line) in read("results.jsonl")?.lines().enumerate() {
            let bad = |what: String| {
                TableError(format!(
                    "{}:{}: {what}",
                    dir.join("results.jsonl").display(),
                    i + 1
                ))
            };
            let mut values: Map<String, Value> =
                serde_json::from_str(line).map_err(|e| bad(format!("not a JSON object: {e}")))?;
            let point = values
                .remove("point")
                .and_then(|p| p.as_u64())
                .ok_or_else(|| bad("no point number".to_owned()))?;
            rows.push(Row { point, values });
        }
        Ok(Table {
            axes: manifest.axes.clone(),
            metrics: manifest.metrics.clone(),
            manifest,
            rows,
        })
    }

    /// Shards' tables merged into the whole sweep's: they must come from the same sweep file
    /// and together hold every point exactly once.
    pub fn merge(shards: Vec<(String, Table)>) -> Result<Table, TableError> {
        let Some((first_name, first)) = shards.first() else {
            return Err(TableError("nothing to merge".to_owned()));
        };
        let mut manifest = first.manifest.clone();
        manifest.shard = None;
        let mut rows: Vec<Row> = Vec::new();
        for (name, t) in &shards {
            let mut m = t.manifest.clone();
            m.shard = None;
            if m != manifest {
                return Err(TableError(format!(
                    "{name}: another sweep than {first_name} (sweep `{}`, file hash {}, {} \
                     points, against `{}`, {}, {})",
                    m.sweep,
                    m.file_hash,
                    m.points,
                    manifest.sweep,
                    manifest.file_hash,
                    manifest.points
                )));
            }
            rows.extend(t.rows.iter().cloned());
        }
        rows.sort_by_key(|r| r.point);
        for (i, r) in rows.iter().enumerate() {
            if r.point != i as u64 {
                let what = if r.point < i as u64 {
                    format!("point {} is in more than one shard", r.point)
                } else {
                    format!("point {i} is in no shard given")
                };
                return Err(TableError(what));
            }
        }
        if rows.len() as u64 != manifest.points {
            return Err(TableError(format!(
                "the shards hold {} of the sweep's {} points; point {} is in no shard given",
                rows.len(),
                manifest.points,
                rows.len()
            )));
        }
        Ok(Table {
            axes: manifest.axes.clone(),
            metrics: manifest.metrics.clone(),
            manifest,
            rows,
        })
    }
}
