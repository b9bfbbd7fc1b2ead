//! The remote commands of an upgrade, as fixed POSIX shell scripts (the steps' own, which
//! install, write the record and signal in one round trip, are in [`super::act`]). Values (paths, pids,
//! signals) reach them only as quoted positional arguments. Every script that acts checks
//! what it acts on first: a signal goes only to a process that is the expected nginx.

use std::sync::LazyLock;

use super::upgrade::CONFIG_TEST_LIMIT;
use crate::model::values::RemotePath;
use crate::ssh::{RemoteCommand, UPLOAD_SCRIPT};

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

/// `script` with the shell function `name` defined in front of it from `body` (another of
/// our scripts, whose positional parameters become the function's): two fixed scripts run as
/// one command, one round trip.
pub fn with_function(name: &str, body: &str, script: &str) -> String {
    format!("{name}() {{\n{body}\n}}\n{script}")
}

/// Facts about a staged file: ELF magic, class and machine (when the host reads them), and
/// `-t` with the running master's own arguments (only for an ELF).
const CHECK_NEW: &str = include_str!("scripts/check_new.sh");

/// Copies a backup to a staged file (for a reverse upgrade to the version it holds).
const STAGE_COPY: &str = include_str!("scripts/stage_copy.sh");

/// The upload ([`crate::ssh::UPLOAD_SCRIPT`]) followed, once the file has the expected
/// sha256, by the check of the new binary.
static UPLOAD_CHECK: LazyLock<String> =
    LazyLock::new(|| with_function("after", CHECK_NEW, UPLOAD_SCRIPT));

/// The copy of a backup followed by the check of the new binary.
static STAGE_CHECK: LazyLock<String> =
    LazyLock::new(|| with_function("after", CHECK_NEW, STAGE_COPY));

/// Where the new binary's ELF header is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderAt {
    /// On the controller, from the very file (the staged file has its sha256): the host
    /// checks only `-t`.
    Controller,
    /// On the host, from the staged file.
    Host,
}

/// The check's arguments: the staged file, `-t`'s limit, who reads the ELF header, the
/// master's own arguments.
fn check_args(staged: &str, header: HeaderAt, master_args: &[String]) -> Vec<String> {
    let header = match header {
        HeaderAt::Controller => "known",
        HeaderAt::Host => "elf",
    };
    [
        staged.to_owned(),
        CONFIG_TEST_LIMIT.as_secs().to_string(),
        header.to_owned(),
    ]
    .into_iter()
    .chain(master_args.iter().cloned())
    .collect()
}

/// Uploads the new binary to `staged` and, when it has `sha256` on the host, checks it there
/// (`-t` with the master's arguments; its ELF header too unless the controller read it), in
/// one command: what the check printed is the upload's [`crate::ssh::Upload::after`].
pub fn upload_checked(
    staged: &str,
    sha256: &str,
    header: HeaderAt,
    master_args: &[String],
) -> RemoteCommand {
    let args = [staged.to_owned(), sha256.to_owned()]
        .into_iter()
        .chain(check_args(staged, header, master_args));
    RemoteCommand::script(UPLOAD_CHECK.as_str(), args.collect::<Vec<_>>())
        .privileged()
        .labelled("upload and check new binary")
}

/// Copies `backup` to `staged` and checks the copy there (ELF header, `-t` with the master's
/// arguments), in one command.
pub fn stage_checked(backup: &str, staged: &str, master_args: &[String]) -> RemoteCommand {
    let args = [backup.to_owned(), staged.to_owned()]
        .into_iter()
        .chain(check_args(staged, HeaderAt::Host, master_args));
    RemoteCommand::script(STAGE_CHECK.as_str(), args.collect::<Vec<_>>())
        .privileged()
        .labelled("stage backup and check")
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
    use std::os::unix::fs::PermissionsExt;

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

    /// The scripts put together for one command pass shellcheck as one script too (but for
    /// SC2086, which the probe's files disable file-wide, for fields of `/proc/PID/stat`
    /// split on purpose: a file-wide directive does not reach into a function body).
    #[test]
    fn combined_scripts_pass_shellcheck() {
        use std::io::Write;
        let lock = crate::host::lock::lock_observing(
            &layout("/usr/sbin/nginx"),
            "ctl",
            crate::ssh::Heartbeat::DEFAULT,
            [
                "/run/nginx.pid".into(),
                "/usr/sbin/nginx".into(),
                "sums".into(),
            ],
        );
        for script in [UPLOAD_CHECK.as_str(), STAGE_CHECK.as_str(), lock.source()] {
            let mut child = std::process::Command::new("shellcheck")
                .args(["-s", "sh", "-e", "SC2086", "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("shellcheck must be installed (scripts/test installs it)");
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(script.as_bytes()).expect("write");
            drop(stdin);
            let out = child.wait_with_output().expect("shellcheck");
            assert!(
                out.status.success(),
                "shellcheck of\n{script}\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }

    /// The upload with its check, run by `sh` here: the check runs only on the file the
    /// sha256 names, reads the ELF header only when told to, and runs `-t` with the
    /// master's own arguments.
    #[test]
    fn the_upload_checks_the_file_only_when_it_has_the_expected_sha256() {
        use sha2::{Digest, Sha256};
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tempdir");
        let staged = dir.path().join(".nginx.ngfleet-stage.t");
        let staged = staged.to_str().expect("utf-8");
        // Not an ELF, but runnable: what `-t` says is what it was given.
        let body = b"#!/bin/sh\necho \"nginx: args $*\"\necho 'second line'\nexit 3\n";
        let sha: String = Sha256::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let args = ["-p".to_owned(), "/srv/my prefix".to_owned()];
        let upload = |cmd: RemoteCommand| {
            let mut child = std::process::Command::new("sh")
                .arg("-c")
                .arg(cmd.source())
                .arg("ngfleet")
                .args(cmd.args())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("sh");
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(body).expect("write");
            drop(stdin);
            let out = child.wait_with_output().expect("sh");
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).expect("utf-8")
        };
        let known = upload(upload_checked(staged, &sha, HeaderAt::Controller, &args));
        assert_eq!(
            known,
            format!(
                "{sha}  -\ntest_rc 3\ntest_out nginx: args -t -p /srv/my prefix\ntest_out second line\nend ok\n"
            )
        );
        assert_eq!(
            std::fs::metadata(staged)
                .expect("staged")
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        let on_host = upload(upload_checked(staged, &sha, HeaderAt::Host, &args));
        assert_eq!(
            on_host,
            format!("{sha}  -\nmagic 23212f62\nclass 105\nemachine 28265\nend ok\n"),
            "a script is no ELF: no `-t`"
        );
        let other = "0".repeat(64);
        let mismatch = upload(upload_checked(staged, &other, HeaderAt::Controller, &args));
        assert_eq!(mismatch, format!("{sha}  -\n"), "no check of another file");
    }

    /// Every line `-t` prints comes back once, in order and as it was (backslashes, `$`,
    /// leading blanks), however many there are (thousands of deprecation warnings happen;
    /// the lines are taken in one pass, not by cutting the text over and over).
    #[test]
    fn every_line_of_the_check_comes_back_as_it_was() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let new = dir.path().join("nginx");
        let body = "#!/bin/sh\ni=0\nwhile [ $i -lt 5000 ]; do printf '  warn %s \\\\n $(x) \\n' \"$i\"; i=$((i + 1)); done\n";
        std::fs::write(&new, body).expect("write");
        std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(CHECK_NEW)
            .arg("ngfleet")
            .args([new.to_str().expect("utf-8"), "20", "known"])
            .output()
            .expect("sh");
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("test_out "))
            .collect();
        assert_eq!(lines.len(), 5000, "{}", &text[..text.len().min(500)]);
        for (i, l) in lines.iter().enumerate() {
            assert_eq!(*l, format!("test_out   warn {i} \\n $(x) "), "line {i}");
        }
        assert!(text.ends_with("end ok\n"), "{text}");
    }

    /// The probe says the machine as `uname -m` does, also under a personality (an i686
    /// container on an x86_64 kernel), where `/proc/sys/kernel/arch` would not.
    #[test]
    fn the_probe_says_the_machine_as_uname_does() {
        let machine = |prefix: &[&str]| {
            let mut cmd = std::process::Command::new(prefix[0]);
            cmd.args(&prefix[1..])
                .args(["sh", "-c", crate::host::observe::PROBE_SCRIPT, "ngfleet"])
                .args(["/nonexistent/nginx.pid", "/nonexistent/nginx", "full"]);
            let out = cmd.output().expect("probe");
            let text = String::from_utf8(out.stdout).expect("utf-8");
            text.lines()
                .find_map(|l| l.strip_prefix("machine "))
                .map(str::to_owned)
                .unwrap_or_else(|| panic!("no machine line: {text}"))
        };
        let uname = std::process::Command::new("uname")
            .arg("-m")
            .output()
            .expect("uname");
        let uname = String::from_utf8(uname.stdout).expect("utf-8");
        assert_eq!(machine(&["env"]), uname.trim());
        if uname.trim() == "x86_64" {
            assert_eq!(machine(&["setarch", "i686"]), "i686");
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
