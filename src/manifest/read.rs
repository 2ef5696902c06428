//! Reading manifest files as untrusted input: the limits of a revision ([`Limits`]), and a
//! [`Reader`] that reads only regular files inside the manifests directory, bounded before
//! anything is allocated.
//!
//! A revision is whatever was pushed, so every read is checked first:
//! - by type, before opening: FIFOs, sockets, devices and directories are refused (a FIFO
//!   would block the reader for ever, `/dev/zero` would never end);
//! - by place: the path is resolved (symbolic links included) and must stay inside the
//!   manifests directory, the rule `documentFile` has always had, now for every file;
//! - by size: the file's size is checked against the per-file and per-revision limits
//!   before it is opened, and the read itself stops one byte past the limit, so a file that
//!   grows while it is read is refused too;
//! - by encoding: invalid UTF-8 is reported with its byte offset, line and column.
//!
//! Nothing of a refused file is read, so nothing of it can be echoed in an error.
//! Loading can be cancelled between files (the daemon's shutdown) through [`Usage`].

use std::cell::{Cell, RefCell};
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::syntax::yaml::{self, Budget};

/// Largest manifest file (or file a manifest names), unless configured (`--max-file-size`).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Largest revision: the bytes of every file read for it (`--max-revision-size`).
pub const DEFAULT_MAX_REVISION_BYTES: u64 = 32 * 1024 * 1024;

/// What one revision may hold. A revision over any of them is invalid like any other:
/// refused, reported, and the last good revision stays in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of one file.
    pub max_file_bytes: u64,
    /// Bytes of every file read for the revision together.
    pub max_revision_bytes: u64,
    /// YAML documents in the revision.
    pub max_documents: usize,
    /// YAML nodes in the revision, aliases expanded.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_revision_bytes: DEFAULT_MAX_REVISION_BYTES,
            max_documents: yaml::DEFAULT_MAX_DOCUMENTS,
            max_nodes: yaml::DEFAULT_MAX_NODES,
        }
    }
}

/// Why a file was not read. The messages never contain anything read from the file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A FIFO, socket, device or directory.
    #[error("not a regular file ({0}); only regular files are read")]
    NotRegular(&'static str),
    /// The path (with `..`, or through a linked directory) is outside the manifests
    /// directory.
    #[error("the file is outside the manifests directory")]
    OutsideRoot,
    /// The path is a symbolic link whose target is outside the manifests directory.
    #[error("a symbolic link to a file outside the manifests directory; refused, not read")]
    LinkOutsideRoot,
    /// A symbolic link whose target does not exist.
    #[error("a symbolic link to nothing")]
    BrokenLink,
    /// Over the per-file limit.
    #[error("{} is over the limit of {} per file; refused (limit: --max-file-size)", Bytes(*.size), Bytes(*.limit))]
    TooLarge {
        /// The file's size (or the bytes read before stopping).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Over the per-revision limit.
    #[error("reading it would take the revision over {} in all; refused (limit: --max-revision-size)", Bytes(*.limit))]
    RevisionTooLarge {
        /// The limit.
        limit: u64,
    },
    /// The files of a directory together are over the per-revision limit (found from
    /// their sizes, before any is read).
    #[error("the manifest files add up to {}, over the limit of {} per revision; refused (limit: --max-revision-size)", Bytes(*.total), Bytes(*.limit))]
    FilesTooLarge {
        /// Their sizes together.
        total: u64,
        /// The limit.
        limit: u64,
    },
    /// Not UTF-8.
    #[error("not UTF-8 (invalid byte at byte offset {offset})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
        /// Its line (1-based).
        line: usize,
        /// Its column (1-based, in characters).
        col: usize,
    },
    /// The file was replaced between the checks and the read.
    #[error("replaced while it was being read; refused")]
    Changed,
    /// Loading was cancelled (shutdown).
    #[error("loading was cancelled")]
    Cancelled,
    /// Any other IO error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl ReadError {
    /// Whether the error is about the revision as a whole (reading on is pointless).
    pub fn is_revision_wide(&self) -> bool {
        matches!(
            self,
            ReadError::RevisionTooLarge { .. } | ReadError::Cancelled
        )
    }
}

/// A byte count as people read it: `1073741824 bytes (1.0 GiB)`.
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
        let n = self.0;
        if n < 1024 {
            return write!(f, "{n} bytes");
        }
        let mut v = n as f64 / 1024.0;
        let mut unit = 0;
        while v >= 1024.0 && unit + 1 < UNITS.len() {
            v /= 1024.0;
            unit += 1;
        }
        if n % (1u64 << (10 * (unit as u32 + 1))) == 0 {
            write!(f, "{v:.0} {}", UNITS[unit])
        } else {
            write!(f, "{n} bytes ({v:.1} {})", UNITS[unit])
        }
    }
}

/// What one revision has used of its limits, shared by every file read and parsed for it;
/// and whether loading it was cancelled.
pub struct Usage<'a> {
    limits: Limits,
    bytes: Cell<u64>,
    /// Set when the byte limit of the revision was hit.
    bytes_spent: Cell<bool>,
    yaml: RefCell<Budget>,
    cancel: Option<&'a AtomicBool>,
}

impl<'a> Usage<'a> {
    /// Nothing used yet; `cancel`, when set, stops loading at the next file.
    pub fn new(limits: Limits, cancel: Option<&'a AtomicBool>) -> Usage<'a> {
        Usage {
            limits,
            bytes: Cell::new(0),
            bytes_spent: Cell::new(false),
            yaml: RefCell::new(Budget::new(limits.max_documents, limits.max_nodes)),
            cancel,
        }
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.get()
    }

    /// Whether loading was cancelled.
    pub fn cancelled(&self) -> bool {
        self.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// Parse YAML text charged to the revision's budget.
    pub fn parse(
        &self,
        file: &std::sync::Arc<Path>,
        text: &str,
    ) -> Result<Vec<yaml::Document>, yaml::YamlError> {
        yaml::parse_documents_within(file, text, &mut self.yaml.borrow_mut())
    }

    /// Refuse a set of files whose sizes together (`listed`) would take the revision over
    /// its limit, before any of them is read.
    pub fn check_listed(&self, listed: u64) -> Result<(), ReadError> {
        let total = self.bytes.get().saturating_add(listed);
        if total > self.limits.max_revision_bytes {
            self.bytes_spent.set(true);
            return Err(ReadError::FilesTooLarge {
                total,
                limit: self.limits.max_revision_bytes,
            });
        }
        Ok(())
    }

    /// Whether a limit of the whole revision was hit (reading or parsing more files would
    /// only repeat the error).
    pub fn exhausted(&self) -> bool {
        self.bytes_spent.get() || self.yaml.borrow().exhausted()
    }
}

/// Reads files under one manifests directory for one revision.
pub struct Reader<'u, 'a> {
    /// The directory, resolved.
    root: PathBuf,
    usage: &'u Usage<'a>,
}

impl<'u, 'a> Reader<'u, 'a> {
    /// A reader of the files under `root`.
    pub fn new(root: &Path, usage: &'u Usage<'a>) -> std::io::Result<Reader<'u, 'a>> {
        Ok(Reader {
            root: root.canonicalize()?,
            usage,
        })
    }

    /// The revision's usage.
    pub fn usage(&self) -> &'u Usage<'a> {
        self.usage
    }

    /// Read `path` as UTF-8 text, within the rules of the module.
    pub fn read_text(&self, path: &Path) -> Result<String, ReadError> {
        let bytes = self.read_bytes(path)?;
        String::from_utf8(bytes).map_err(|e| {
            let offset = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            // The valid prefix is text: the position is counted in it.
            let prefix = std::str::from_utf8(&bytes[..offset]).unwrap_or_default();
            let (line, col) = yaml::line_col(prefix, offset);
            ReadError::NotUtf8 { offset, line, col }
        })
    }

    /// Read `path`'s bytes, within the rules of the module.
    pub fn read_bytes(&self, path: &Path) -> Result<Vec<u8>, ReadError> {
        if self.usage.cancelled() {
            return Err(ReadError::Cancelled);
        }
        let resolved = match path.canonicalize() {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && is_symlink(path) => {
                return Err(ReadError::BrokenLink)
            }
            Err(e) => return Err(e.into()),
        };
        if !resolved.starts_with(&self.root) {
            return Err(if is_symlink(path) {
                ReadError::LinkOutsideRoot
            } else {
                ReadError::OutsideRoot
            });
        }
        // By type, before opening: opening a FIFO blocks until a writer comes.
        let meta = std::fs::metadata(&resolved)?;
        check_regular(&meta)?;
        let limits = &self.usage.limits;
        if meta.len() > limits.max_file_bytes {
            return Err(ReadError::TooLarge {
                size: meta.len(),
                limit: limits.max_file_bytes,
            });
        }
        let used = self.usage.bytes.get();
        if used.saturating_add(meta.len()) > limits.max_revision_bytes {
            self.usage.bytes_spent.set(true);
            return Err(ReadError::RevisionTooLarge {
                limit: limits.max_revision_bytes,
            });
        }
        let file = File::open(&resolved)?;
        // The file opened must be the one checked (not swapped for a FIFO or a device in
        // between).
        let opened = file.metadata()?;
        if opened.dev() != meta.dev() || opened.ino() != meta.ino() || !opened.is_file() {
            return Err(ReadError::Changed);
        }
        let cap = limits.max_file_bytes.min(limits.max_revision_bytes - used);
        // Never trust the size for the allocation either: read at most one byte past it.
        let mut buf = Vec::with_capacity(meta.len().min(cap) as usize);
        file.take(cap + 1).read_to_end(&mut buf)?;
        let n = buf.len() as u64;
        if n > limits.max_file_bytes {
            return Err(ReadError::TooLarge {
                size: n,
                limit: limits.max_file_bytes,
            });
        }
        if n > cap {
            self.usage.bytes_spent.set(true);
            return Err(ReadError::RevisionTooLarge {
                limit: limits.max_revision_bytes,
            });
        }
        self.usage.bytes.set(used + n);
        Ok(buf)
    }
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Refuse anything but a regular file, naming what it is.
fn check_regular(meta: &std::fs::Metadata) -> Result<(), ReadError> {
    let t = meta.file_type();
    let kind = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a file"
    };
    Err(ReadError::NotRegular(kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::time::{Duration, Instant};

    fn limits() -> Limits {
        Limits {
            max_file_bytes: 100,
            max_revision_bytes: 150,
            ..Limits::default()
        }
    }

    #[test]
    fn a_fifo_is_refused_by_type_without_opening_it() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("x.yaml");
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(ok.success());
        let usage = Usage::new(limits(), None);
        let r = Reader::new(dir.path(), &usage).unwrap();
        let started = Instant::now();
        let e = r.read_text(&fifo).unwrap_err();
        assert!(matches!(e, ReadError::NotRegular("a FIFO")), "{e}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn devices_and_links_outside_the_directory_are_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "root:hash:1::\n").unwrap();
        symlink(outside.path().join("secret"), dir.path().join("a.yaml")).unwrap();
        symlink("/dev/zero", dir.path().join("z.yaml")).unwrap();
        symlink("missing.yaml", dir.path().join("b.yaml")).unwrap();
        std::fs::write(dir.path().join("in.yaml"), "x: 1\n").unwrap();
        symlink("in.yaml", dir.path().join("link.yaml")).unwrap();
        let usage = Usage::new(limits(), None);
        let r = Reader::new(dir.path(), &usage).unwrap();
        let e = r.read_text(&dir.path().join("a.yaml")).unwrap_err();
        assert!(matches!(e, ReadError::LinkOutsideRoot), "{e}");
        assert!(!e.to_string().contains("root:hash"));
        // /dev/zero is outside too; a device inside would be refused by type.
        assert!(r.read_text(&dir.path().join("z.yaml")).is_err());
        let usage = Usage::new(limits(), None);
        let dev = Reader::new(Path::new("/dev"), &usage).unwrap();
        let e = dev.read_text(Path::new("/dev/zero")).unwrap_err();
        assert!(
            matches!(e, ReadError::NotRegular("a character device")),
            "{e}"
        );
        assert!(matches!(
            r.read_text(&dir.path().join("b.yaml")).unwrap_err(),
            ReadError::BrokenLink
        ));
        assert_eq!(
            r.read_text(&dir.path().join("link.yaml")).unwrap(),
            "x: 1\n"
        );
        let e = r.read_text(&dir.path().join("../x.yaml")).unwrap_err();
        assert!(
            matches!(e, ReadError::Io(_) | ReadError::OutsideRoot),
            "{e}"
        );
    }

    #[test]
    fn sizes_are_checked_before_reading_and_add_up_per_revision() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.yaml");
        // Sparse: a gigabyte on paper, nothing on disk, and never read.
        File::create(&big).unwrap().set_len(1 << 30).unwrap();
        for (name, len) in [("a.yaml", 80), ("b.yaml", 80)] {
            std::fs::write(dir.path().join(name), "x".repeat(len)).unwrap();
        }
        let usage = Usage::new(limits(), None);
        let r = Reader::new(dir.path(), &usage).unwrap();
        let e = r.read_text(&big).unwrap_err();
        assert_eq!(
            e.to_string(),
            "1 GiB is over the limit of 100 bytes per file; refused (limit: --max-file-size)"
        );
        r.read_text(&dir.path().join("a.yaml")).unwrap();
        let e = r.read_text(&dir.path().join("b.yaml")).unwrap_err();
        assert!(
            matches!(e, ReadError::RevisionTooLarge { limit: 150 }),
            "{e}"
        );
        assert!(e.is_revision_wide() && usage.exhausted());
        assert_eq!(usage.bytes(), 80);
    }

    #[test]
    fn invalid_utf8_names_its_byte_offset_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("u.yaml");
        std::fs::write(&f, b"a: 1\nb: \xc3\xa9\xff\n").unwrap();
        let usage = Usage::new(limits(), None);
        let r = Reader::new(dir.path(), &usage).unwrap();
        match r.read_text(&f).unwrap_err() {
            ReadError::NotUtf8 { offset, line, col } => {
                assert_eq!((offset, line, col), (10, 2, 5))
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn cancelled_loading_reads_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "x: 1\n").unwrap();
        let cancel = AtomicBool::new(true);
        let usage = Usage::new(limits(), Some(&cancel));
        let r = Reader::new(dir.path(), &usage).unwrap();
        assert!(matches!(
            r.read_text(&dir.path().join("a.yaml")).unwrap_err(),
            ReadError::Cancelled
        ));
    }

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(Bytes(100).to_string(), "100 bytes");
        assert_eq!(Bytes(4 << 20).to_string(), "4 MiB");
        assert_eq!(Bytes(1536).to_string(), "1536 bytes (1.5 KiB)");
    }
}
