//! The new nginx binary on the controller, judged before anything is uploaded: a regular,
//! non-empty file under [`MAX_BINARY_BYTES`], an executable ELF whose class and machine are read
//! from its header, and the spec's sha256 when it gives one.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256 as Hasher};

use super::InputError;
use super::file::{self, FileError, FileKind, Size};
use crate::model::elf::{self, ElfError, ElfHeader};
use crate::model::spec::{Sha256, Spec};

/// The largest binary ngfleet uploads: 512 MiB. nginx is a few MiB even with every module
/// and debug symbols; anything near this is a wrong file, refused before it is uploaded to
/// every host.
pub const MAX_BINARY_BYTES: u64 = 512 * 1024 * 1024;

/// What is wrong with the binary file.
#[derive(Debug, thiserror::Error)]
pub enum BinaryProblem {
    #[error("it does not exist")]
    Missing,
    #[error("it is not a regular file ({0})")]
    NotAFile(FileKind),
    #[error("it is empty")]
    Empty,
    #[error("it is {}, over the limit of {} for a binary", Size(*.0), Size(MAX_BINARY_BYTES))]
    TooLarge(u64),
    #[error(transparent)]
    NotElf(#[from] ElfError),
    #[error("it changed while it was read ({expected} bytes, then {found})")]
    Changed { expected: u64, found: u64 },
    #[error("sha256 is {found}, the spec expects {expected}")]
    Checksum { expected: String, found: String },
    #[error("{0}")]
    Io(#[source] io::Error),
}

/// A checked local binary, ready to upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalBinary {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
    pub elf: ElfHeader,
}

impl fmt::Display for LocalBinary {
    /// `./nginx-1.22.9 (ELF 64-bit, x86-64, 1.3 MiB, sha256:9f2c…)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {}, sha256:{})",
            self.path.display(),
            self.elf,
            Size(self.size),
            self.sha256
        )
    }
}

/// The binary to roll out: `--binary` wins over the spec's `binary.source`. It must be a
/// non-empty regular file under [`MAX_BINARY_BYTES`], an executable ELF, and match the spec's
/// sha256 when one is given.
pub fn binary(cli_binary: Option<&Path>, spec: &Spec) -> Result<LocalBinary, InputError> {
    let path = match (cli_binary, &spec.binary) {
        (Some(p), _) => p.to_owned(),
        (None, Some(b)) => b.source.clone(),
        (None, None) => return Err(InputError::NoBinary),
    };
    let expected = spec.binary.as_ref().and_then(|b| b.sha256.as_ref());
    check_binary(&path, expected).map_err(|problem| InputError::Binary { path, problem })
}

fn check_binary(path: &Path, expected: Option<&Sha256>) -> Result<LocalBinary, BinaryProblem> {
    let (file, size) = match file::open_regular(path, MAX_BINARY_BYTES) {
        Ok(opened) => opened,
        Err(FileError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
            return Err(BinaryProblem::Missing);
        }
        Err(FileError::Io(e)) => return Err(BinaryProblem::Io(e)),
        Err(FileError::NotRegular(kind)) => return Err(BinaryProblem::NotAFile(kind)),
        Err(FileError::TooLarge { size, .. }) => return Err(BinaryProblem::TooLarge(size)),
    };
    if size == 0 {
        return Err(BinaryProblem::Empty);
    }
    let mut reader = file.take(MAX_BINARY_BYTES + 1);
    let mut head = Vec::with_capacity(elf::HEADER_BYTES);
    (&mut reader)
        .take(elf::HEADER_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(BinaryProblem::Io)?;
    let header = ElfHeader::parse(&head)?;
    let mut hasher = Hasher::new();
    hasher.update(&head);
    let read = head.len() as u64 + hash_into(&mut hasher, reader).map_err(BinaryProblem::Io)?;
    if read > MAX_BINARY_BYTES {
        return Err(BinaryProblem::TooLarge(read));
    }
    if read != size {
        return Err(BinaryProblem::Changed {
            expected: size,
            found: read,
        });
    }
    let sha256 = hex(&hasher.finalize());
    if let Some(expected) = expected
        && expected.as_str() != sha256
    {
        return Err(BinaryProblem::Checksum {
            expected: expected.to_string(),
            found: sha256,
        });
    }
    Ok(LocalBinary {
        path: path.to_owned(),
        sha256,
        size,
        elf: header,
    })
}

/// Feeds everything `reader` yields to `hasher`; how many bytes that was.
fn hash_into(hasher: &mut Hasher, mut reader: impl Read) -> io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
}

/// Lowercase hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut hasher = Hasher::new();
    hash_into(&mut hasher, fs::File::open(path)?)?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf_file(dir: &Path, name: &str, machine: u16) -> PathBuf {
        let mut bytes = b"\x7fELF\x02\x01\x01\0".to_vec();
        bytes.extend([0; 8]);
        bytes.extend(3u16.to_le_bytes());
        bytes.extend(machine.to_le_bytes());
        bytes.extend([0xab; 2000]);
        let path = dir.join(name);
        fs::write(&path, bytes).expect("write");
        path
    }

    fn problem(path: &Path) -> String {
        check_binary(path, None)
            .map(|b| b.to_string())
            .unwrap_or_else(|e| format!("refused: {e}"))
    }

    #[test]
    fn an_elf_is_described_by_its_header() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = elf_file(dir.path(), "nginx", 62);
        let binary = check_binary(&path, None).expect("ok");
        assert_eq!(binary.size, 2020);
        assert_eq!(binary.elf.machine, 62);
        assert_eq!(binary.sha256, sha256_file(&path).expect("sha"));
        assert_eq!(
            binary.to_string(),
            format!(
                "{} (ELF 64-bit, x86-64, 2.0 KiB, sha256:{})",
                path.display(),
                binary.sha256
            )
        );
        let arm = elf_file(dir.path(), "nginx-arm", 183);
        assert!(problem(&arm).contains("(ELF 64-bit, AArch64, "));
        let wrong: Sha256 = "0".repeat(64).parse().expect("sha");
        assert!(matches!(
            check_binary(&path, Some(&wrong)),
            Err(BinaryProblem::Checksum { .. })
        ));
    }

    #[test]
    fn what_is_not_an_elf_binary_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let script = dir.path().join("script");
        fs::write(&script, "#!/bin/sh\nexec nginx \"$@\"\n").expect("write");
        let empty = dir.path().join("empty");
        fs::write(&empty, "").expect("write");
        let cases = [
            (
                script,
                "refused: it is not an ELF executable (it starts with \"#!/bin/sh\")",
            ),
            (empty, "refused: it is empty"),
            (
                dir.path().to_owned(),
                "refused: it is not a regular file (a directory)",
            ),
            (dir.path().join("none"), "refused: it does not exist"),
            (
                PathBuf::from("/dev/zero"),
                "refused: it is not a regular file (a character device)",
            ),
        ];
        for (path, message) in cases {
            assert_eq!(problem(&path), message, "{}", path.display());
        }
    }

    #[test]
    fn a_huge_sparse_file_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = elf_file(dir.path(), "huge", 62);
        let file = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_len(2 << 30).expect("truncate");
        let started = std::time::Instant::now();
        assert_eq!(
            problem(&path),
            "refused: it is 2 GiB, over the limit of 512 MiB for a binary"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
