//! Opening an input file without trusting it: it must be a regular file (after following
//! symlinks) under a size limit. The type and size are read with `stat` before the file is
//! opened, so a FIFO, a device, a socket or a directory is refused at once, never read; the
//! file is then opened non-blocking and checked again by its handle (it may have been replaced
//! in between), and never more than the limit is read.

use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest inventory or spec file read: 64 MiB. Real ones are kilobytes; the limit keeps
/// `-i /dev/zero`-like mistakes from eating the controller's memory.
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// What a path names, when it is not a regular file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Directory,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
    Other,
}

impl FileKind {
    fn of(meta: &Metadata) -> Option<FileKind> {
        let t = meta.file_type();
        Some(if t.is_file() {
            return None;
        } else if t.is_dir() {
            FileKind::Directory
        } else if t.is_fifo() {
            FileKind::Fifo
        } else if t.is_char_device() {
            FileKind::CharDevice
        } else if t.is_block_device() {
            FileKind::BlockDevice
        } else if t.is_socket() {
            FileKind::Socket
        } else {
            FileKind::Other
        })
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Directory => "a directory",
            FileKind::Fifo => "a FIFO",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Socket => "a socket",
            FileKind::Other => "a special file",
        })
    }
}

/// A number of bytes, for people: `812 bytes`, `1.3 MiB`, `64 MiB`, `2 GiB` (tenths rounded
/// up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
        if self.0 < 1024 {
            return write!(f, "{} bytes", self.0);
        }
        let mut unit = 1024u64;
        let mut name = UNITS[0];
        for next in &UNITS[1..] {
            if self.0 < unit * 1024 {
                break;
            }
            unit *= 1024;
            name = next;
        }
        if self.0.is_multiple_of(unit) {
            write!(f, "{} {name}", self.0 / unit)
        } else {
            // Rounded up, so a size just over a limit never reads as the limit.
            let tenths = (u128::from(self.0) * 10).div_ceil(u128::from(unit));
            write!(f, "{}.{} {name}", tenths / 10, tenths % 10)
        }
    }
}

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("not a regular file ({0})")]
    NotRegular(FileKind),
    #[error("it is {}, over the limit of {limit}", Size(*.size))]
    TooLarge { size: u64, limit: Size },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Opens `path` for reading if it is a regular file of at most `limit` bytes; returns it with
/// its size. A non-regular file is refused by `stat`, before any `open`.
pub fn open_regular(path: &Path, limit: u64) -> Result<(File, u64), FileError> {
    check(&fs::metadata(path)?, limit)?;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let size = check(&file.metadata()?, limit)?;
    Ok((file, size))
}

fn check(meta: &Metadata, limit: u64) -> Result<u64, FileError> {
    if let Some(kind) = FileKind::of(meta) {
        return Err(FileError::NotRegular(kind));
    }
    if meta.len() > limit {
        return Err(FileError::TooLarge {
            size: meta.len(),
            limit: Size(limit),
        });
    }
    Ok(meta.len())
}

/// The bytes of a regular file of at most `limit` bytes. Reads at most `limit + 1` bytes,
/// whatever the file claims its size is (`/proc` files say 0).
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let (file, size) = open_regular(path, limit)?;
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    let read = bytes.len() as u64;
    if read > limit {
        return Err(FileError::TooLarge {
            size: read,
            limit: Size(limit),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_a_person_writes_them() {
        let cases = [
            (0, "0 bytes"),
            (1023, "1023 bytes"),
            (1024, "1 KiB"),
            (1536, "1.5 KiB"),
            (1_300_000, "1.3 MiB"),
            (MAX_INPUT_BYTES, "64 MiB"),
            (MAX_INPUT_BYTES + 1, "64.1 MiB"),
            (2 << 30, "2 GiB"),
            (5 << 40, "5 TiB"),
        ];
        for (bytes, text) in cases {
            assert_eq!(Size(bytes).to_string(), text, "{bytes}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_small_regular_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let small = dir.path().join("small.yaml");
        fs::write(&small, "a: 1\n").expect("write");
        assert_eq!(read_bounded(&small, 5).expect("fits"), b"a: 1\n");
        assert_eq!(
            read_bounded(&small, 4).map_err(|e| e.to_string()).err(),
            Some("it is 5 bytes, over the limit of 4 bytes".into())
        );
        assert!(matches!(
            read_bounded(dir.path(), 100),
            Err(FileError::NotRegular(FileKind::Directory))
        ));
        assert!(matches!(
            read_bounded(Path::new("/dev/zero"), 100),
            Err(FileError::NotRegular(FileKind::CharDevice))
        ));
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink("/dev/null", &link).expect("symlink");
        assert!(matches!(
            read_bounded(&link, 100),
            Err(FileError::NotRegular(FileKind::CharDevice))
        ));
        assert!(matches!(
            read_bounded(&dir.path().join("none"), 100),
            Err(FileError::Io(e)) if e.kind() == io::ErrorKind::NotFound
        ));
    }

    #[test]
    fn a_file_that_lies_about_its_size_is_still_bounded() {
        // /proc files report a size of 0 and yield more when read.
        let got = read_bounded(Path::new("/proc/self/status"), 16);
        assert!(
            matches!(got, Err(FileError::TooLarge { size: 17, .. })),
            "{got:?}"
        );
    }
}
