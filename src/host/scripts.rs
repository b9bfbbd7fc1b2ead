//! The remote commands of an upgrade, as fixed POSIX shell scripts (the steps' own, which
//! install, write the record and signal in one round trip, are in [`super::act`]). Values (paths, pids,
//! signals) reach them only as quoted positional arguments. Every script that acts checks
//! what it acts on first: a signal goes only to a process that is the expected nginx.

use super::upgrade::CONFIG_TEST_LIMIT;
use crate::model::values::RemotePath;
use crate::ssh::RemoteCommand;

/// Paths ngfleet keeps beside a host's nginx binary. When `nginx_binary` is a symlink, the
/// file it points to is what is replaced (staged, backed up and renamed over in *its*
/// directory), so the link and the layout around it stay exactly as they were; the lock and
/// the record stay beside the configured path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// `nginx_binary` as configured (what the master was started as).
    pub binary: RemotePath,
    /// The file it resolves to (the same path when it is not a symlink).
    pub file: RemotePath,
}

fn dir_base(path: &RemotePath) -> (&str, &str) {
    let p = path.as_str();
    let base = p.rsplit('/').next().unwrap_or(p);
    (path.parent().trim_end_matches('/'), base)
}

impl Layout {
    /// The layout of a binary that is not a symlink.
    pub fn plain(binary: RemotePath) -> Layout {
        Layout {
            file: binary.clone(),
            binary,
        }
    }

    /// `DIR/.nginx.ngfleet-lock`: held (flock) by a live controller session.
    pub fn lock(&self) -> String {
        let (dir, base) = dir_base(&self.binary);
        format!("{dir}/.{base}.ngfleet-lock")
    }

    /// `DIR/.nginx.ngfleet-state`: the host's record (history and operation in flight).
    pub fn record(&self) -> String {
        let (dir, base) = dir_base(&self.binary);
        format!("{dir}/.{base}.ngfleet-state")
    }

    /// `FILEDIR/.nginx.ngfleet-stage.TAG`: where a new binary is uploaded, in the same
    /// directory as the file it replaces so the final rename is atomic.
    pub fn stage(&self, tag: &str) -> String {
        let (dir, base) = dir_base(&self.file);
        format!("{dir}/.{base}.ngfleet-stage.{tag}")
    }

    /// `FILE.ngfleet-backup.SHA16`: the binary that ran before, named by its checksum.
    pub fn backup(&self, sha256: &str) -> String {
        format!(
            "{}.ngfleet-backup.{}",
            self.file.as_str(),
            &sha256[..sha256.len().min(16)]
        )
    }

    /// Whether `path` is one of our staged temp files for this binary.
    pub fn is_stage(&self, path: &str) -> bool {
        let (dir, base) = dir_base(&self.file);
        let prefix = format!("{dir}/.{base}.ngfleet-stage.");
        path.starts_with(&prefix) && !path[prefix.len()..].contains('/')
    }
}

/// Facts about an uploaded file: ELF magic, ELF machine, host machine, and `-t` with the
/// running master's own arguments (only for an ELF).
const CHECK_NEW: &str = include_str!("scripts/check_new.sh");

pub fn check_new(staged: &str, master_args: &[String]) -> RemoteCommand {
    let limit = CONFIG_TEST_LIMIT.as_secs().to_string();
    let args = [staged.to_owned(), limit]
        .into_iter()
        .chain(master_args.iter().cloned());
    RemoteCommand::script(CHECK_NEW, args.collect::<Vec<_>>())
        .privileged()
        .labelled("check new binary")
}

/// Puts `$1` (a backup) back at `$2` by a same-directory rename, after checking that it
/// hashes to `$3`.
const RESTORE: &str = include_str!("scripts/restore.sh");

pub fn restore(layout: &Layout, backup: &str, sha256: &str) -> RemoteCommand {
    RemoteCommand::script(
        RESTORE,
        [
            backup.to_owned(),
            layout.file.as_str().to_owned(),
            sha256.to_owned(),
        ],
    )
    .privileged()
    .labelled("restore binary")
}

/// Copies a backup to a staged file (for a reverse upgrade to the version it holds).
const STAGE_COPY: &str = include_str!("scripts/stage_copy.sh");

pub fn stage_copy(backup: &str, staged: &str) -> RemoteCommand {
    RemoteCommand::script(STAGE_COPY, [backup.to_owned(), staged.to_owned()])
        .privileged()
        .labelled("stage backup")
}

/// Which process a signal may go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalTarget {
    /// An nginx master (`nginx: master process …`).
    Master,
    /// An nginx worker (for orphans of a killed master).
    Worker,
    /// Any child of the given parent (a new binary hanging before it renamed itself).
    ChildOf(u32),
}

/// Sends `$2` to pid `$1` after checking it is the expected kind of process. Prints
/// `sent`, or `gone` (exit 3), or `refused …` (exit 4).
const SIGNAL: &str = include_str!("scripts/signal.sh");

pub fn signal(pid: u32, signal: &str, target: SignalTarget) -> RemoteCommand {
    let (kind, parent) = match target {
        SignalTarget::Master => ("master", 0),
        SignalTarget::Worker => ("worker", 0),
        SignalTarget::ChildOf(p) => ("child", p),
    };
    RemoteCommand::script(
        SIGNAL,
        [
            pid.to_string(),
            signal.to_owned(),
            kind.to_owned(),
            parent.to_string(),
        ],
    )
    .privileged()
    .labelled(format!("send {signal} to {pid}"))
}

/// Removes our staged temp files (the caller passes only paths that match the pattern).
const CLEANUP: &str = include_str!("scripts/cleanup.sh");

pub fn cleanup(paths: &[String]) -> RemoteCommand {
    RemoteCommand::script(CLEANUP, paths.to_vec())
        .privileged()
        .labelled("remove staged files")
}

/// The last lines of nginx's error log, for evidence in a failure.
const ERROR_LOG: &str = include_str!("scripts/error_log.sh");

pub fn error_log_tail(candidates: &[String]) -> RemoteCommand {
    RemoteCommand::script(ERROR_LOG, candidates.to_vec())
        .privileged()
        .labelled("read error log")
}

/// Where the remote scripts live, as globs relative to the crate root: the unit test below
/// and `.ci/run` shellcheck exactly these files.
pub const SCRIPT_GLOBS: [&str; 4] = [
    "src/host/*.sh",
    "src/host/scripts/*.sh",
    "src/gate/scripts/*.sh",
    "src/ssh/scripts/*.sh",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every remote script file passes shellcheck (as `sh`, by its `#!/bin/sh` line), and
    /// `.ci/run` checks the same globs.
    #[test]
    fn script_files_pass_shellcheck() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for glob in SCRIPT_GLOBS {
            let dir = root.join(glob.trim_end_matches("/*.sh"));
            for entry in std::fs::read_dir(&dir).expect("script dir") {
                let path = entry.expect("entry").path();
                if path.extension().is_some_and(|e| e == "sh") {
                    let text = std::fs::read_to_string(&path).expect("script");
                    assert!(text.starts_with("#!/bin/sh\n"), "{}", path.display());
                    files.push(path);
                }
            }
        }
        assert!(files.len() >= 17, "found only {files:?}");
        let out = std::process::Command::new("shellcheck")
            .args(&files)
            .output()
            .expect(
                "shellcheck must be installed to test the remote scripts (scripts/test installs it)",
            );
        assert!(
            out.status.success(),
            "shellcheck:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let ci = std::fs::read_to_string(root.join(".ci/run")).expect(".ci/run");
        for glob in SCRIPT_GLOBS {
            assert!(ci.contains(glob), ".ci/run does not shellcheck {glob}");
        }
    }

    fn layout(path: &str) -> Layout {
        Layout::plain(path.parse().expect("path"))
    }

    #[test]
    fn names_beside_the_binary() {
        let l = layout("/usr/sbin/nginx");
        assert_eq!(l.lock(), "/usr/sbin/.nginx.ngfleet-lock");
        assert_eq!(l.stage("a1"), "/usr/sbin/.nginx.ngfleet-stage.a1");
        assert_eq!(
            l.backup("0123456789abcdef0123"),
            "/usr/sbin/nginx.ngfleet-backup.0123456789abcdef"
        );
        assert!(l.is_stage("/usr/sbin/.nginx.ngfleet-stage.x"));
        assert!(!l.is_stage("/usr/sbin/nginx"));
        assert!(!l.is_stage("/usr/sbin/.nginx.ngfleet-stage.x/../../etc"));
        let root = layout("/nginx");
        assert_eq!(root.lock(), "/.nginx.ngfleet-lock");
        // A symlinked binary: the file it points to is staged, backed up and replaced in its
        // own directory; the lock and the record stay beside the link.
        let linked = Layout {
            binary: "/usr/sbin/nginx".parse().expect("path"),
            file: "/opt/nginx/nginx-1.22.1".parse().expect("path"),
        };
        assert_eq!(linked.lock(), "/usr/sbin/.nginx.ngfleet-lock");
        assert_eq!(linked.record(), "/usr/sbin/.nginx.ngfleet-state");
        assert_eq!(
            linked.stage("a1"),
            "/opt/nginx/.nginx-1.22.1.ngfleet-stage.a1"
        );
        assert_eq!(
            linked.backup("0123456789abcdef0123"),
            "/opt/nginx/nginx-1.22.1.ngfleet-backup.0123456789abcdef"
        );
        assert!(linked.is_stage("/opt/nginx/.nginx-1.22.1.ngfleet-stage.x"));
        assert!(!linked.is_stage("/usr/sbin/.nginx.ngfleet-stage.x"));
    }
}
