//! OpenSSH `known_hosts` files: looking a host's key up (plain, wildcard,
//! negated and hashed `|1|` host patterns, `[host]:port` names, `@revoked`
//! markers) with the real line number of a conflicting entry, the
//! `@cert-authority` keys trusted for a host (`host_cert.rs` judges a
//! certificate with them), appending
//! newly accepted keys, and telling whether a path can remember a key at all
//! (`/dev/null`, a directory or an unwritable place cannot).
//!
//! Why not `russh::keys::known_hosts::check_known_hosts_path`: it does match
//! hashed entries and `[host]:port`, but (russh 0.65.1) it does not count
//! `#` comment lines, so the line it reports for a changed key is wrong in
//! any file with comments; it fails the whole lookup on one unparsable line;
//! it refuses a host that has two keys of one type even when one matches; and
//! it ignores wildcards, negations and `@revoked`. Its
//! `learn_known_hosts_path` starts a new file with a blank line (so the first
//! entry is on line 2), hence the small `learn` here.

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use russh::keys::ssh_encoding::base64::{Base64, Encoding};
use russh::keys::{Algorithm, PublicKey};
use sha1::Sha1;

/// The verdict for a host key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostKeyStatus {
    /// A line for this host lists exactly this key.
    Known { line: usize },
    /// The host is listed, but with other key(s); `line` is the first one.
    /// A known key of a *different* algorithm counts too, so a
    /// man-in-the-middle cannot dodge the check by offering another key type.
    Changed { line: usize },
    /// The key is marked `@revoked`.
    Revoked { line: usize },
    /// The host is not listed at all.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Plain,
    Revoked,
    CertAuthority,
}

#[derive(Debug)]
struct Entry {
    line: usize,
    marker: Marker,
    patterns: String,
    key: PublicKey,
}

/// A parsed known_hosts file.
#[derive(Debug, Default)]
pub(crate) struct KnownHosts {
    entries: Vec<Entry>,
}

impl KnownHosts {
    /// Reads `path`; a missing file is an empty one.
    pub(crate) fn load(path: &Path) -> io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self::parse(&text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    /// Parses file contents. Lines that do not parse are skipped, as OpenSSH
    /// does; line numbers count every line (1-based).
    pub(crate) fn parse(text: &str) -> Self {
        let entries = text
            .lines()
            .enumerate()
            .filter_map(|(i, line)| parse_line(i + 1, line))
            .collect();
        Self { entries }
    }

    /// Looks up `key` for `host`:`port`.
    pub(crate) fn check(&self, host: &str, port: u16, key: &PublicKey) -> HostKeyStatus {
        let name = lookup_name(host, port);
        let mut first_other = None;
        for entry in &self.entries {
            let same_key = entry.key.key_data() == key.key_data();
            match entry.marker {
                Marker::Revoked if same_key && host_field_matches(&entry.patterns, &name) => {
                    return HostKeyStatus::Revoked { line: entry.line };
                }
                Marker::Plain if host_field_matches(&entry.patterns, &name) => {
                    if same_key {
                        // A revocation anywhere in the file still wins.
                        if let Some(line) = self.revocation(&name, key) {
                            return HostKeyStatus::Revoked { line };
                        }
                        return HostKeyStatus::Known { line: entry.line };
                    }
                    first_other.get_or_insert(entry.line);
                }
                _ => {}
            }
        }
        match first_other {
            Some(line) => HostKeyStatus::Changed { line },
            None => HostKeyStatus::Unknown,
        }
    }

    /// Algorithms of the keys recorded for `host`:`port`, in file order, so
    /// the key exchange can ask the server for a key type we can verify.
    pub(crate) fn algorithms_for(&self, host: &str, port: u16) -> Vec<Algorithm> {
        let name = lookup_name(host, port);
        let mut algorithms: Vec<Algorithm> = Vec::new();
        for entry in &self.entries {
            if entry.marker == Marker::Plain && host_field_matches(&entry.patterns, &name) {
                let algorithm = entry.key.algorithm();
                if !algorithms.contains(&algorithm) {
                    algorithms.push(algorithm);
                }
            }
        }
        algorithms
    }

    /// The `@cert-authority` lines whose host patterns match `host`:`port`: their line numbers
    /// and CA keys, in file order.
    pub(crate) fn authorities_for(&self, host: &str, port: u16) -> Vec<(usize, &PublicKey)> {
        let name = lookup_name(host, port);
        self.entries
            .iter()
            .filter(|e| e.marker == Marker::CertAuthority && host_field_matches(&e.patterns, &name))
            .map(|e| (e.line, &e.key))
            .collect()
    }

    /// The line marking `key` `@revoked` for `host`:`port`, if any.
    pub(crate) fn revoked(&self, host: &str, port: u16, key: &PublicKey) -> Option<usize> {
        self.revocation(&lookup_name(host, port), key)
    }

    fn revocation(&self, name: &str, key: &PublicKey) -> Option<usize> {
        self.entries
            .iter()
            .find(|e| {
                e.marker == Marker::Revoked
                    && e.key.key_data() == key.key_data()
                    && host_field_matches(&e.patterns, name)
            })
            .map(|e| e.line)
    }
}

/// Why a known_hosts path cannot remember a key: a key "recorded" there is
/// gone by the next connection, so accepting new keys would trust every key
/// a host presents, a changed one included. Displayed after the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unrememberable {
    /// A character device (`/dev/null`), a directory, a fifo, ...
    #[error("is {kind}, not a file")]
    NotAFile { kind: &'static str },
    /// An existing file that cannot be read and appended to.
    #[error("cannot be read and written ({reason})")]
    Unwritable { reason: String },
    /// A missing file whose nearest existing ancestor is not a directory.
    #[error("cannot be created: {} is not a directory", .ancestor.display())]
    NoDirectory { ancestor: PathBuf },
    /// A missing file whose nearest existing directory is not writable.
    #[error("cannot be created in {} ({reason})", .dir.display())]
    CannotCreate { dir: PathBuf, reason: String },
    /// A key appended to it was not there when the file was read back.
    #[error("did not keep a key written to it")]
    Forgot,
}

/// Whether `path` can remember a key [`learn`] appends: an existing regular
/// file (symlinks followed) that this process may read and write, or a
/// missing one that can be created (its nearest existing ancestor is a
/// writable directory). Looks only; creates nothing.
pub fn can_remember(path: &Path) -> Result<(), Unrememberable> {
    use rustix::fs::{Access, access};
    match std::fs::metadata(path) {
        Ok(meta) => {
            let kind = meta.file_type();
            if !kind.is_file() {
                return Err(Unrememberable::NotAFile {
                    kind: file_kind(kind),
                });
            }
            access(path, Access::READ_OK | Access::WRITE_OK).map_err(|e| {
                Unrememberable::Unwritable {
                    reason: io::Error::from(e).to_string(),
                }
            })
        }
        Err(e) if missing(&e) => {
            for ancestor in path.ancestors().skip(1) {
                let dir = if ancestor.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    ancestor
                };
                match std::fs::metadata(dir) {
                    Ok(meta) if meta.is_dir() => {
                        return access(dir, Access::WRITE_OK | Access::EXEC_OK).map_err(|e| {
                            Unrememberable::CannotCreate {
                                dir: dir.to_owned(),
                                reason: io::Error::from(e).to_string(),
                            }
                        });
                    }
                    Ok(_) => {
                        return Err(Unrememberable::NoDirectory {
                            ancestor: dir.to_owned(),
                        });
                    }
                    Err(e) if missing(&e) => {}
                    Err(e) => {
                        return Err(Unrememberable::CannotCreate {
                            dir: dir.to_owned(),
                            reason: e.to_string(),
                        });
                    }
                }
            }
            Err(Unrememberable::CannotCreate {
                dir: path.to_owned(),
                reason: "no existing directory above it".into(),
            })
        }
        Err(e) => Err(Unrememberable::Unwritable {
            reason: e.to_string(),
        }),
    }
}

/// Not there, or below something that is not a directory (which the walk up finds).
fn missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

fn file_kind(kind: std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_fifo() {
        "a fifo"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// Appends `key` for `host`:`port` (as `host` or `[host]:port`), creating the
/// file and its directory if needed.
pub(crate) fn learn(path: &Path, host: &str, port: u16, key: &PublicKey) -> io::Result<()> {
    let key_text = key.to_openssh().map_err(io::Error::other)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    let mut line = String::new();
    let len = file.metadata()?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::End(-1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            line.push('\n');
        }
    }
    line.push_str(&lookup_name(host, port));
    line.push(' ');
    line.push_str(key_text.trim_end());
    line.push('\n');
    // One write: appends from concurrent processes do not interleave.
    file.write_all(line.as_bytes())
}

/// The name OpenSSH looks up: `host` for port 22, else `[host]:port`.
fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

fn parse_line(number: usize, line: &str) -> Option<Entry> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_ascii_whitespace();
    let mut first = fields.next()?;
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        m if m.starts_with('@') => return None,
        _ => Marker::Plain,
    };
    if marker != Marker::Plain {
        first = fields.next()?;
    }
    let _key_type = fields.next()?;
    let key = russh::keys::parse_public_key_base64(fields.next()?).ok()?;
    Some(Entry {
        line: number,
        marker,
        patterns: first.to_owned(),
        key,
    })
}

/// OpenSSH semantics: a comma-separated list matches when some pattern
/// matches and no negated (`!`) pattern does.
fn host_field_matches(field: &str, name: &str) -> bool {
    let mut matched = false;
    for pattern in field.split(',') {
        if let Some(hashed) = pattern.strip_prefix("|1|") {
            matched |= hashed_matches(hashed, name);
        } else if let Some(negated) = pattern.strip_prefix('!') {
            if glob_matches(&negated.to_ascii_lowercase(), name) {
                return false;
            }
        } else if glob_matches(&pattern.to_ascii_lowercase(), name) {
            matched = true;
        }
    }
    matched
}

/// `|1|SALT|HASH`: HASH = HMAC-SHA1(key = SALT, data = name), base64.
fn hashed_matches(salt_and_hash: &str, name: &str) -> bool {
    let Some((salt, hash)) = salt_and_hash.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (Base64::decode_vec(salt), Base64::decode_vec(hash)) else {
        return false;
    };
    let Ok(mac) = Hmac::<Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.chain_update(name.as_bytes())
        .verify_slice(&hash)
        .is_ok()
}

/// Shell-style `*` / `?` wildcard match over bytes.
fn glob_matches(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some(b'*') => {
                backtrack = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match backtrack {
                Some((star, matched)) => {
                    pi = star + 1;
                    ni = matched + 1;
                    backtrack = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    p.iter().skip(pi).all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIHmweaRDZaiPugft8CaVhZKu/6PGbyoB2Bum8M/8HWPT";
    const KEY_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIEJAnN/1rKElRN7lOzl+hhZUOP68aECm7wTH2DNTR0Qc";
    const KEY_EC: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBCVnMQTnqkA2kYlQRmoX4qzPU2/h+BMLM200KYRdZSgzzzbEasee1MGtmNeSnNB7FDK2nlF+4iZ6mrqp3g8NmLY=";
    /// Produced by `ssh-keygen -H` from `[127.0.0.1]:2222 KEY_A` and
    /// `web-7.example.com KEY_B`.
    const HASHED: &str = "\
|1|cX4i8hUxhX2NOHk+iquPlQuEWx4=|bX2dHlwAVtBRUIiS912Yqb0tQmI= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHmweaRDZaiPugft8CaVhZKu/6PGbyoB2Bum8M/8HWPT
|1|rr+k+60P07c0qvA63GKe1DC+0z0=|crSMPTIhPGS2pUnbPZROJ/j9x7Y= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEJAnN/1rKElRN7lOzl+hhZUOP68aECm7wTH2DNTR0Qc
";

    fn key(b64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b64).expect("test key parses")
    }

    #[test]
    fn hashed_entries_from_ssh_keygen_match() {
        let kh = KnownHosts::parse(HASHED);
        assert_eq!(
            kh.check("127.0.0.1", 2222, &key(KEY_A)),
            HostKeyStatus::Known { line: 1 }
        );
        assert_eq!(
            kh.check("WEB-7.example.com", 22, &key(KEY_B)),
            HostKeyStatus::Known { line: 2 }
        );
        // Same host, other port: not the same name.
        assert_eq!(
            kh.check("127.0.0.1", 22, &key(KEY_A)),
            HostKeyStatus::Unknown
        );
        // Hashed entry with another key: changed, at the right line.
        assert_eq!(
            kh.check("web-7.example.com", 22, &key(KEY_A)),
            HostKeyStatus::Changed { line: 2 }
        );
    }

    #[test]
    fn bracketed_port_and_plain_names() {
        let text = format!(
            "# comment line\n\n[10.0.0.7]:2222 ssh-ed25519 {KEY_A}\n10.0.0.7,web-07 ssh-ed25519 {KEY_B} root@x\n"
        );
        let kh = KnownHosts::parse(&text);
        assert_eq!(
            kh.check("10.0.0.7", 2222, &key(KEY_A)),
            HostKeyStatus::Known { line: 3 }
        );
        assert_eq!(
            kh.check("web-07", 22, &key(KEY_B)),
            HostKeyStatus::Known { line: 4 }
        );
        // Comments and blank lines are counted in line numbers.
        assert_eq!(
            kh.check("10.0.0.7", 2222, &key(KEY_B)),
            HostKeyStatus::Changed { line: 3 }
        );
        assert_eq!(
            kh.check("10.0.0.7", 22, &key(KEY_A)),
            HostKeyStatus::Changed { line: 4 }
        );
        assert_eq!(
            kh.check("10.0.0.8", 22, &key(KEY_A)),
            HostKeyStatus::Unknown
        );
    }

    #[test]
    fn other_key_type_counts_as_changed() {
        let kh = KnownHosts::parse(&format!("web-07 ecdsa-sha2-nistp256 {KEY_EC}\n"));
        assert_eq!(
            kh.check("web-07", 22, &key(KEY_A)),
            HostKeyStatus::Changed { line: 1 }
        );
        assert_eq!(
            kh.algorithms_for("web-07", 22),
            vec![key(KEY_EC).algorithm()]
        );
    }

    #[test]
    fn any_matching_line_wins_over_a_stale_one() {
        let text = format!("web-07 ssh-ed25519 {KEY_B}\nweb-07 ssh-ed25519 {KEY_A}\n");
        let kh = KnownHosts::parse(&text);
        assert_eq!(
            kh.check("web-07", 22, &key(KEY_A)),
            HostKeyStatus::Known { line: 2 }
        );
    }

    #[test]
    fn wildcards_negation_and_revocation() {
        let text = format!(
            "*.prod.example,!db-*.prod.example ssh-ed25519 {KEY_A}\n@revoked * ssh-ed25519 {KEY_B}\n@cert-authority *.prod.example ssh-ed25519 {KEY_B}\n"
        );
        let kh = KnownHosts::parse(&text);
        assert_eq!(
            kh.check("web-1.prod.example", 22, &key(KEY_A)),
            HostKeyStatus::Known { line: 1 }
        );
        assert_eq!(
            kh.check("db-1.prod.example", 22, &key(KEY_A)),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            kh.check("anything", 22, &key(KEY_B)),
            HostKeyStatus::Revoked { line: 2 }
        );
        assert_eq!(
            kh.check("web-1.prod.example", 22, &key(KEY_B)),
            HostKeyStatus::Revoked { line: 2 }
        );
        // The CA line is no plain key of the host, and trusts only its pattern.
        assert_eq!(
            kh.algorithms_for("web-1.prod.example", 22),
            vec![key(KEY_A).algorithm()]
        );
        let cas = kh.authorities_for("web-1.prod.example", 22);
        assert_eq!(cas.len(), 1);
        assert_eq!(cas[0].0, 3);
        assert_eq!(cas[0].1.key_data(), key(KEY_B).key_data());
        assert!(kh.authorities_for("web-1.prod.example", 2222).is_empty());
        assert!(kh.authorities_for("web-1.dev.example", 22).is_empty());
        assert_eq!(kh.revoked("x", 22, &key(KEY_B)), Some(2));
        assert_eq!(kh.revoked("x", 22, &key(KEY_A)), None);
    }

    #[test]
    fn broken_lines_are_skipped_not_fatal() {
        let text = format!(
            "web-07 ssh-ed25519 not-base64!!\nweb-07\n@bogus web-07 ssh-ed25519 {KEY_B}\nweb-07 ssh-ed25519 {KEY_A}\n"
        );
        let kh = KnownHosts::parse(&text);
        assert_eq!(
            kh.check("web-07", 22, &key(KEY_A)),
            HostKeyStatus::Known { line: 4 }
        );
    }

    #[test]
    fn glob() {
        assert!(glob_matches("*", "a"));
        assert!(glob_matches("web-?", "web-1"));
        assert!(!glob_matches("web-?", "web-12"));
        assert!(glob_matches("*.example.com", "a.b.example.com"));
        assert!(!glob_matches("*.example.com", "example.com"));
        assert!(glob_matches("[10.0.0.*]:2222", "[10.0.0.7]:2222"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("a*b*c", "axxbyy"));
    }

    #[test]
    fn learn_then_check() {
        let dir = std::env::temp_dir().join(format!("ngssh-kh-test-{}", std::process::id()));
        let path = dir.join("sub").join("known_hosts");
        let _ = std::fs::remove_dir_all(&dir);
        let k = key(KEY_A);
        assert!(learn(&path, "10.0.0.9", 2200, &k).is_ok());
        assert!(learn(&path, "10.0.0.9", 22, &key(KEY_B)).is_ok());
        let kh = KnownHosts::load(&path).expect("readable");
        assert_eq!(
            kh.check("10.0.0.9", 2200, &k),
            HostKeyStatus::Known { line: 1 }
        );
        assert_eq!(
            kh.check("10.0.0.9", 22, &key(KEY_B)),
            HostKeyStatus::Known { line: 2 }
        );
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(text.starts_with("[10.0.0.9]:2200 ssh-ed25519 "), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            KnownHosts::load(&path)
                .map(|k| k.entries.is_empty())
                .unwrap_or(false)
        );
    }

    #[test]
    fn learn_after_a_last_line_without_newline() {
        let path = std::env::temp_dir().join(format!("ngssh-kh-nonl-{}", std::process::id()));
        assert!(std::fs::write(&path, format!("# x\nweb-07 ssh-ed25519 {KEY_B}")).is_ok());
        assert!(learn(&path, "Web-08", 22, &key(KEY_A)).is_ok());
        let kh = KnownHosts::load(&path).expect("readable");
        assert_eq!(
            kh.check("web-07", 22, &key(KEY_B)),
            HostKeyStatus::Known { line: 2 }
        );
        assert_eq!(
            kh.check("web-08", 22, &key(KEY_A)),
            HostKeyStatus::Known { line: 3 }
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn what_cannot_remember_a_key() {
        let not_a_file = |kind| Err(Unrememberable::NotAFile { kind });
        assert_eq!(
            can_remember(Path::new("/dev/null")),
            not_a_file("a character device")
        );
        let dir = std::env::temp_dir().join(format!("ngssh-kh-remember-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(std::fs::create_dir_all(&dir).is_ok());
        assert_eq!(can_remember(&dir), not_a_file("a directory"));
        let to_null = dir.join("to-null");
        assert!(std::os::unix::fs::symlink("/dev/null", &to_null).is_ok());
        assert_eq!(can_remember(&to_null), not_a_file("a character device"));
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        assert_eq!(can_remember(&fifo), not_a_file("a fifo"));
        // A regular file, and a missing one in directories still to be made.
        let file = dir.join("known_hosts");
        assert!(std::fs::write(&file, "").is_ok());
        assert_eq!(can_remember(&file), Ok(()));
        assert_eq!(can_remember(&dir.join("a/b/known_hosts")), Ok(()));
        assert_eq!(can_remember(Path::new("relative-missing-kh")), Ok(()));
        // Below a regular file nothing can be created.
        assert_eq!(
            can_remember(&file.join("sub/known_hosts")),
            Err(Unrememberable::NoDirectory {
                ancestor: file.clone()
            })
        );
        assert_eq!(
            can_remember(Path::new("/dev/null/known_hosts")),
            Err(Unrememberable::NoDirectory {
                ancestor: "/dev/null".into()
            })
        );
        // The message reads after the path.
        assert_eq!(
            format!(
                "/dev/null {}",
                not_a_file("a character device").unwrap_err()
            ),
            "/dev/null is a character device, not a file"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unwritable_place_cannot_remember() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // Permission bits do not stop root (the lab tests run as root), so use a directory
        // procfs keeps read-only for everyone.
        let denied = can_remember(Path::new("/proc/1/known_hosts"));
        assert!(
            matches!(&denied, Err(Unrememberable::CannotCreate { dir, .. }) if dir == Path::new("/proc/1")),
            "{denied:?}"
        );
        // A read-only file is judged as this process may use it: root may write it (and
        // `learn` would), anyone else may not.
        let file = std::env::temp_dir().join(format!("ngssh-kh-ro-{}", std::process::id()));
        assert!(std::fs::write(&file, "").is_ok());
        let perms = std::fs::Permissions::from_mode(0o444);
        assert!(std::fs::set_permissions(&file, perms).is_ok());
        let root = std::fs::metadata(&file).map(|m| m.uid() == 0);
        let verdict = can_remember(&file);
        match root {
            Ok(true) => assert_eq!(verdict, Ok(()), "root"),
            _ => assert!(
                matches!(&verdict, Err(Unrememberable::Unwritable { .. })),
                "{verdict:?}"
            ),
        }
        let _ = std::fs::remove_file(&file);
    }
}
