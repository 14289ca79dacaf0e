//! The one place the studies (sweeps, pictures) write files: whole files, atomically (a
//! temporary file beside the target, renamed over it), so that a reader never sees half a
//! file and a failed write leaves none behind; missing folders are created.
//!
//! Kept apart from the scenario report's own writer (`report::Report::write_atomic`) so the
//! two can change independently.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically, creating its folder if needed. The error names the
/// file.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let error = |e: std::io::Error| format!("{}: cannot write: {e}", path.display());
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(error)?;
    let name = path
        .file_name()
        .ok_or_else(|| format!("`{}` names no file", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_files_and_creates_folders() {
        let dir = std::env::temp_dir().join(format!("scenarios-output-{}", std::process::id()));
        let path = dir.join("a/b/file.txt");
        write_file(&path, b"one").unwrap();
        write_file(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.join("a/b")).unwrap().count(), 1);
        let e = write_file(&dir.join("a/b/file.txt/x"), b"").unwrap_err();
        assert!(e.contains("file.txt/x: cannot write"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
