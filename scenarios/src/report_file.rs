//! Writing a report file so that it is complete or absent, never half written, and never
//! anything but a regular file.
//!
//! [`write_atomic`] is what every command that writes a report (`run --report`) goes through:
//!
//! 1. The target, if it exists, must be a regular file (after following symbolic links): a
//!    device node, a pipe, a folder or `/dev/stdout` is refused, so a run as root cannot
//!    replace `/dev/null` with a regular file.
//! 2. The contents are complete before any file is made (the caller passes them whole).
//! 3. They go to a new temporary file beside the target, created exclusively (`O_CREAT |
//!    O_EXCL`: an existing file or a symbolic link planted at its name is never followed or
//!    reused), named `.NAME.PID-N.tmp` so that a leftover cannot be mistaken for a report;
//!    written, flushed to disk, then renamed over the target in one step.
//! 4. Every error on the way removes the temporary file (so does a panic: the removal is a
//!    guard's `Drop`). Only a kill between its creation and the rename (a few system calls,
//!    since the contents are ready) can leave one behind, and it is then a hidden `.tmp` file,
//!    never the report.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Temporary names tried before giving up (each collision means another writer's file).
const TEMP_NAMES_TRIED: u32 = 100;

/// Writes `contents` to `path` atomically (see the module's documentation).
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let target = target(path)?;
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{}` names no file", path.display()),
        )
    })?;
    let (file, temp) = create_temp(&dir, &name.to_string_lossy())?;
    let guard = RemoveOnDrop(Some(temp));
    write_and_sync(file, contents)?;
    let temp = guard.path();
    fs::rename(temp, &target)?;
    guard.disarm();
    Ok(())
}

/// The file to replace: `path` itself, or the file a symbolic link at `path` leads to.
/// Refuses anything that exists and is not a regular file.
fn target(path: &Path) -> io::Result<PathBuf> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() => {
            let is_link = fs::symlink_metadata(path)?.file_type().is_symlink();
            if is_link {
                // Replace the file the link leads to, and keep the link.
                fs::canonicalize(path)
            } else {
                Ok(path.to_path_buf())
            }
        }
        Ok(meta) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "is not a regular file but {}: a report replaces regular files only",
                kind_of(&meta)
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(path.to_path_buf()),
        Err(e) => Err(e),
    }
}

/// What a non-regular file is, for the refusal.
fn kind_of(meta: &fs::Metadata) -> &'static str {
    if meta.is_dir() {
        return "a folder";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_fifo() {
            return "a pipe";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "a special file"
}

/// A new file in `dir`, created exclusively, named after the target `name`.
fn create_temp(dir: &Path, name: &str) -> io::Result<(File, PathBuf)> {
    let pid = std::process::id();
    for n in 0..TEMP_NAMES_TRIED {
        let temp = dir.join(format!(".{name}.{pid}-{n}.tmp"));
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => return Ok((file, temp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "cannot create a temporary file beside it: {TEMP_NAMES_TRIED} names of the form \
             .{name}.{pid}-N.tmp are taken"
        ),
    ))
}

fn write_and_sync(mut file: File, contents: &[u8]) -> io::Result<()> {
    file.write_all(contents)?;
    file.sync_all()
}

/// Removes the temporary file when dropped, unless disarmed.
struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn path(&self) -> &Path {
        self.0.as_deref().expect("armed until disarmed")
    }

    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder under the target directory, removed at the end.
    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let dir = std::env::temp_dir()
                .join(format!("mktme-report-file-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }

        fn entries(&self) -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn writes_and_replaces_a_regular_file_leaving_nothing_else() {
        let dir = Dir::new("replace");
        let path = dir.0.join("r.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(dir.entries(), ["r.json"]);
    }

    #[test]
    fn non_regular_targets_are_refused() {
        let dir = Dir::new("refuse");
        let e = write_atomic(&dir.0, b"x").unwrap_err();
        assert!(e.to_string().contains("a folder"), "{e}");
        #[cfg(unix)]
        {
            let e = write_atomic(Path::new("/dev/null"), b"x").unwrap_err();
            assert!(e.to_string().contains("a character device"), "{e}");
        }
        assert!(dir.entries().is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_temporary_name_is_not_followed() {
        let dir = Dir::new("planted");
        let victim = dir.0.join("victim");
        fs::write(&victim, b"keep").unwrap();
        let planted = dir.0.join(format!(".r.json.{}-0.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        write_atomic(&dir.0.join("r.json"), b"report").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert_eq!(fs::read(dir.0.join("r.json")).unwrap(), b"report");
        // The planted link is left alone, and the report took the next name.
        assert!(
            fs::symlink_metadata(&planted)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_link_to_a_report_keeps_the_link() {
        let dir = Dir::new("link");
        let real = dir.0.join("real.json");
        fs::write(&real, b"old").unwrap();
        let link = dir.0.join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert_eq!(fs::read(&real).unwrap(), b"new");
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(dir.entries(), ["link.json", "real.json"]);
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let dir = Dir::new("fail");
        // The rename fails: the target is a folder that appeared after the check. Simulate
        // it by renaming onto a non-empty folder's name directly.
        let target = dir.0.join("busy");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("x"), b"x").unwrap();
        let (file, temp) = create_temp(&dir.0, "busy").unwrap();
        let guard = RemoveOnDrop(Some(temp));
        write_and_sync(file, b"report").unwrap();
        assert!(fs::rename(guard.path(), &target).is_err());
        drop(guard);
        assert_eq!(dir.entries(), ["busy"]);
    }
}
