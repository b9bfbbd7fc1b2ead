//! The per-host lock: its remote scripts (take and hold it, read it, break it) and the pure
//! reading of what they print. The lock is `flock` on `DIR/.BASENAME.ngfleet-lock` beside the
//! binary, held by a shell of the controller's own SSH session that answers the controller's
//! heartbeats ([`crate::ssh::Heartbeat`]) and exits when they stop, so a lock never outlives
//! its controller by more than the silence limit. `ngfleet unlock` breaks one by hand.

use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use super::observe::PROBE_SCRIPT;
use super::scripts::{Layout, with_function};
use crate::ssh::{Heartbeat, HoldOutcome, RemoteCommand, Session, SshError};

/// The line the holder prints once it has the lock.
pub const READY: &str = "locked";

/// Takes the lock (`$1`) for controller `$2` and holds it while heartbeat lines arrive on
/// stdin, each at most `$3` seconds (default 30) after the last; echoes each line. Prints
/// `locked`, or `busy OWNER` and exits 75 when a live holder has it. The owner line names
/// the controller, this shell's pid (the holder `unlock` may kill) and the start time. Only
/// this shell keeps fd 9: its children get it closed, so its exit releases the lock; nor do
/// they keep the channel's stderr, so sshd closes the channel as soon as the shell is gone.
/// With more arguments, it runs the shell function `probe` with them before `locked`
/// ([`lock_observing`]).
pub const LOCK: &str = include_str!("scripts/lock.sh");

/// [`LOCK`] with the probe ([`PROBE_SCRIPT`]) as its function `probe`: the lock and the first
/// observation in one command.
static LOCK_OBSERVING: LazyLock<String> =
    LazyLock::new(|| with_function("probe", PROBE_SCRIPT, LOCK));

/// Reads the lock `$1` without taking it: `state absent|free|held` (or `state error RC`), then
/// `owner LINE` (what the last holder wrote).
pub const STATE: &str = include_str!("scripts/lock_state.sh");

/// Breaks the lock `$1` held by pid `$2` (or, without `$2`, by the one ngfleet shell that has
/// it open): the pid must have the lock file open and be an ngfleet script (`$0` is
/// `ngfleet`). TERM, then KILL if the lock is still held after 3 s. Prints `free` (nothing
/// held it), `released PID`, `refused: …` (exit 4), or `failed: …` (exit 5).
pub const UNLOCK: &str = include_str!("scripts/unlock.sh");

/// The command that takes and holds the lock for `owner`, its holder exiting after the
/// silence of `beat`.
pub fn lock(layout: &Layout, owner: &str, beat: Heartbeat) -> RemoteCommand {
    RemoteCommand::script(LOCK, [layout.lock(), owner.to_owned(), beat.silence_arg()])
        .privileged()
        .labelled("lock")
}

/// The command that takes and holds the lock like [`lock`] and, once it has it, prints the
/// probe's output (with `probe_args`, as [`super::probe::args`] gives them) before its ready
/// line: the holder's first observation comes back with the lock
/// ([`crate::ssh::Held::take_said`]).
pub fn lock_observing(
    layout: &Layout,
    owner: &str,
    beat: Heartbeat,
    probe_args: [String; 3],
) -> RemoteCommand {
    let args = [layout.lock(), owner.to_owned(), beat.silence_arg()]
        .into_iter()
        .chain(probe_args);
    RemoteCommand::script(LOCK_OBSERVING.as_str(), args.collect::<Vec<_>>())
        .privileged()
        .labelled("lock")
}

/// Whether `script` is the lock's (alone or with the probe): for the simulated host.
pub fn is_lock_script(script: &str) -> bool {
    script == LOCK || script == LOCK_OBSERVING.as_str()
}

/// Takes the lock on `session`'s host and keeps it alive with `beat`'s heartbeats.
pub async fn take(
    session: &Session,
    layout: &Layout,
    owner: &str,
    beat: Heartbeat,
    deadline: Duration,
) -> Result<HoldOutcome, SshError> {
    session
        .hold_with(&lock(layout, owner, beat), READY, deadline, beat)
        .await
}

/// The command that reads the lock (changes nothing).
pub fn state(layout: &Layout) -> RemoteCommand {
    RemoteCommand::script(STATE, [layout.lock()])
        .privileged()
        .labelled("read the lock")
}

/// The command that breaks the lock held by `holder` (or by the one ngfleet process that
/// holds it, when no pid was recorded).
pub fn unlock(layout: &Layout, holder: Option<u32>) -> RemoteCommand {
    let pid = holder.map(|p| p.to_string()).unwrap_or_default();
    RemoteCommand::script(UNLOCK, [layout.lock(), pid])
        .privileged()
        .labelled("break the lock")
}

/// Who holds a lock, from the owner line the holder wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The controller (`ngfleet run ID pid N on HOST`), or the whole line when it is not in
    /// this version's form.
    pub controller: String,
    /// The holding shell's pid on the host.
    pub pid: Option<u32>,
    /// When it took the lock (UTC, as the host's clock says).
    pub since: Option<String>,
}

const PID_MARK: &str = "; holder pid ";

impl Holder {
    /// Reads an owner line (`CONTROLLER; holder pid PID since TIME`). Never fails: a line in
    /// another form is all controller.
    pub fn parse(line: &str) -> Holder {
        let line = line.trim();
        let whole = || Holder {
            controller: line.to_owned(),
            pid: None,
            since: None,
        };
        let Some((controller, rest)) = line.rsplit_once(PID_MARK) else {
            return whole();
        };
        let (pid, since) = match rest.split_once(" since ") {
            Some((pid, since)) => (pid, Some(since.trim().to_owned())),
            None => (rest, None),
        };
        match pid.trim().parse() {
            Ok(pid) => Holder {
                controller: controller.trim().to_owned(),
                pid: Some(pid),
                since,
            },
            Err(_) => whole(),
        }
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let controller = if self.controller.is_empty() {
            "an unnamed controller"
        } else {
            &self.controller
        };
        f.write_str(controller)?;
        match (&self.pid, &self.since) {
            (Some(pid), Some(since)) => write!(f, " (holder pid {pid} since {since})"),
            (Some(pid), None) => write!(f, " (holder pid {pid})"),
            (None, _) => f.write_str(" (holder pid not recorded)"),
        }
    }
}

/// What [`STATE`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockState {
    /// Nobody holds it (or there is no lock file).
    Free,
    Held(Holder),
}

/// Reads [`STATE`]'s output; `Err` carries the output that made no sense.
pub fn parse_state(output: &str) -> Result<LockState, String> {
    let mut state = None;
    let mut owner = String::new();
    for line in output.lines() {
        if let Some(s) = line.strip_prefix("state ") {
            state = Some(s.trim());
        } else if let Some(o) = line.strip_prefix("owner ") {
            owner = o.to_owned();
        }
    }
    match state {
        Some("absent" | "free") => Ok(LockState::Free),
        Some("held") => Ok(LockState::Held(Holder::parse(&owner))),
        _ => Err(output.trim().to_owned()),
    }
}

/// What [`UNLOCK`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Broken {
    /// The holder was killed and the lock is free.
    Released { pid: u32 },
    /// Nothing held it any more.
    Free,
}

/// Reads [`UNLOCK`]'s output; `Err` is its reason for not breaking the lock.
pub fn parse_unlock(output: &str) -> Result<Broken, String> {
    let text = output.trim();
    if text == "free" {
        return Ok(Broken::Free);
    }
    if let Some(pid) = text.strip_prefix("released ")
        && let Ok(pid) = pid.trim().parse()
    {
        return Ok(Broken::Released { pid });
    }
    let reason = text
        .strip_prefix("refused: ")
        .or_else(|| text.strip_prefix("failed: "))
        .unwrap_or(text);
    Err(if reason.is_empty() {
        "no answer from the host".to_owned()
    } else {
        reason.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::Privilege;

    fn layout() -> Layout {
        Layout::plain("/usr/sbin/nginx".parse().expect("path"))
    }

    #[test]
    fn holder_lines_name_controller_pid_and_time() {
        let h = Holder::parse(
            "ngfleet run 20250101T000000Z-abc pid 42 on ctl; holder pid 4567 since 2025-01-01T00:00:00Z ",
        );
        assert_eq!(
            h.controller,
            "ngfleet run 20250101T000000Z-abc pid 42 on ctl"
        );
        assert_eq!(h.pid, Some(4567));
        assert_eq!(h.since.as_deref(), Some("2025-01-01T00:00:00Z"));
        assert_eq!(
            h.to_string(),
            "ngfleet run 20250101T000000Z-abc pid 42 on ctl (holder pid 4567 since 2025-01-01T00:00:00Z)"
        );
    }

    #[test]
    fn an_owner_line_of_another_form_is_all_controller() {
        let old = Holder::parse("other-controller pid=4242 ");
        assert_eq!(old.controller, "other-controller pid=4242");
        assert_eq!(old.pid, None);
        assert_eq!(
            old.to_string(),
            "other-controller pid=4242 (holder pid not recorded)"
        );
        let bad = Holder::parse("x; holder pid nope since t");
        assert_eq!(bad.controller, "x; holder pid nope since t");
        assert_eq!(bad.pid, None);
        // A controller name that itself contains the mark: the last one counts.
        let nested = Holder::parse("a; holder pid 1 b; holder pid 7 since t");
        assert_eq!(nested.pid, Some(7));
        assert_eq!(nested.controller, "a; holder pid 1 b");
        assert_eq!(
            Holder::parse("").to_string(),
            "an unnamed controller (holder pid not recorded)"
        );
    }

    #[test]
    fn state_output_reads_as_free_or_held() {
        assert_eq!(parse_state("state absent\n"), Ok(LockState::Free));
        assert_eq!(
            parse_state("state free\nowner old; holder pid 3 since t\n"),
            Ok(LockState::Free)
        );
        assert_eq!(
            parse_state("state held\nowner ctl; holder pid 3 since t \n"),
            Ok(LockState::Held(Holder {
                controller: "ctl".into(),
                pid: Some(3),
                since: Some("t".into()),
            }))
        );
        assert_eq!(
            parse_state("state error 64\nowner \n"),
            Err("state error 64\nowner".into())
        );
        assert_eq!(parse_state(""), Err(String::new()));
    }

    #[test]
    fn unlock_output_reads_as_released_free_or_a_reason() {
        assert_eq!(
            parse_unlock("released 4567\n"),
            Ok(Broken::Released { pid: 4567 })
        );
        assert_eq!(parse_unlock("free\n"), Ok(Broken::Free));
        assert_eq!(
            parse_unlock("refused: pid 9 does not hold /x\n"),
            Err("pid 9 does not hold /x".into())
        );
        assert_eq!(
            parse_unlock("failed: /x is still held\n"),
            Err("/x is still held".into())
        );
        assert_eq!(parse_unlock(""), Err("no answer from the host".into()));
    }

    #[test]
    fn commands_pass_the_lock_path_and_limits_as_arguments() {
        let cmd = lock(&layout(), "ctl pid 1", Heartbeat::new(7));
        assert_eq!(
            cmd.args(),
            ["/usr/sbin/.nginx.ngfleet-lock", "ctl pid 1", "7"]
        );
        assert!(cmd.is_privileged());
        assert_eq!(cmd.label(), "lock");
        assert_eq!(state(&layout()).args(), ["/usr/sbin/.nginx.ngfleet-lock"]);
        assert_eq!(
            unlock(&layout(), Some(12)).args(),
            ["/usr/sbin/.nginx.ngfleet-lock", "12"]
        );
        assert_eq!(
            unlock(&layout(), None).args(),
            ["/usr/sbin/.nginx.ngfleet-lock", ""]
        );
        let line = cmd.render(&Privilege::Sudo).expect("renders");
        assert!(line.starts_with("sudo -n -- sh -c "), "{line}");
    }

    /// The scripts as the host runs them (`sh -c SCRIPT ngfleet ARGS`), here on this machine.
    mod on_this_machine {
        use super::*;
        use std::io::{BufRead, BufReader, Write};
        use std::path::{Path, PathBuf};
        use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
        use std::time::{Duration, Instant};

        fn sh(script: &str, args: &[&str]) -> Command {
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(script).arg("ngfleet").args(args);
            cmd
        }

        fn run(script: &str, args: &[&str]) -> Output {
            sh(script, args)
                .stdin(Stdio::null())
                .output()
                .expect("run sh")
        }

        fn is_free(path: &Path) -> bool {
            Command::new("flock")
                .arg("-n")
                .arg(path)
                .arg("true")
                .status()
                .expect("flock")
                .success()
        }

        struct Holding {
            child: Child,
            stdin: Option<ChildStdin>,
            stdout: BufReader<ChildStdout>,
        }

        impl Holding {
            fn line(&mut self) -> String {
                let mut line = String::new();
                self.stdout.read_line(&mut line).expect("read");
                line.trim_end().to_owned()
            }

            /// Waits up to `limit` for the holder to exit; how long it took.
            fn exits_within(&mut self, limit: Duration) -> Option<Duration> {
                let t = Instant::now();
                while t.elapsed() < limit {
                    if self.child.try_wait().expect("wait").is_some() {
                        return Some(t.elapsed());
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                None
            }
        }

        impl Drop for Holding {
            fn drop(&mut self) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }

        fn take(path: &Path, silence: &str) -> Holding {
            let mut child = sh(
                LOCK,
                &[path.to_str().expect("utf-8"), "test-ctl pid 1", silence],
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn sh");
            let stdin = child.stdin.take();
            let stdout = BufReader::new(child.stdout.take().expect("stdout"));
            let mut holding = Holding {
                child,
                stdin,
                stdout,
            };
            assert_eq!(holding.line(), READY);
            holding
        }

        fn lock_file() -> (tempfile::TempDir, PathBuf) {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join(".nginx.ngfleet-lock");
            (dir, path)
        }

        fn text(path: &Path) -> String {
            std::fs::read_to_string(path).expect("lock file")
        }

        #[test]
        fn the_holder_echoes_heartbeats_and_exits_when_they_stop() {
            let (_dir, path) = lock_file();
            let mut h = take(&path, "1");
            assert!(!is_free(&path), "held while heartbeats come");
            let holder = Holder::parse(&text(&path));
            assert_eq!(holder.controller, "test-ctl pid 1");
            assert_eq!(
                holder.pid,
                Some(h.child.id()),
                "the holder is the shell itself"
            );
            assert!(
                holder.since.as_deref().is_some_and(|s| s.ends_with('Z')),
                "{holder:?}"
            );
            for n in 1..=3 {
                let stdin = h.stdin.as_mut().expect("stdin");
                writeln!(stdin, "hb {n}").expect("write");
                assert_eq!(h.line(), format!("hb {n}"));
                std::thread::sleep(Duration::from_millis(600));
            }
            assert!(
                h.child.try_wait().expect("wait").is_none(),
                "kept alive by heartbeats"
            );
            // Input stays open, but silent: the holder gives up after the limit (1 s).
            let took = h
                .exits_within(Duration::from_secs(5))
                .expect("the holder exits");
            assert!(took >= Duration::from_millis(300), "{took:?}");
            assert!(is_free(&path));
            assert_eq!(text(&path), "", "the owner line is cleared");
        }

        #[test]
        fn the_observing_holder_prints_the_probe_before_locked_and_keeps_the_lock_alone() {
            let (dir, path) = lock_file();
            let binary = dir.path().join("nginx");
            std::fs::write(&binary, b"not really nginx").expect("binary");
            let pid_file = dir.path().join("nginx.pid");
            let cmd = lock_observing(
                &Layout::plain(binary.to_str().expect("utf-8").parse().expect("path")),
                "test-ctl pid 1",
                Heartbeat::new(30),
                [
                    pid_file.to_str().expect("utf-8").to_owned(),
                    binary.to_str().expect("utf-8").to_owned(),
                    "sums".to_owned(),
                ],
            );
            assert_eq!(cmd.args()[0], path.to_str().expect("utf-8"));
            let args: Vec<&str> = cmd.args().iter().map(String::as_str).collect();
            let mut child = sh(cmd.source(), &args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn sh");
            let mut stdin = child.stdin.take();
            // A heartbeat already waiting is the holder's, not the probe's.
            writeln!(stdin.as_mut().expect("stdin"), "hb 1").expect("write");
            let stdout = BufReader::new(child.stdout.take().expect("stdout"));
            let mut h = Holding {
                child,
                stdin,
                stdout,
            };
            let mut said = String::new();
            loop {
                let line = h.line();
                assert!(!line.is_empty(), "the holder ended before `locked`: {said}");
                if line == READY {
                    break;
                }
                said.push_str(&line);
                said.push('\n');
            }
            let obs = crate::host::observe::parse(&said).expect("the probe's output parses");
            assert!(obs.master.is_none(), "{obs:?}");
            assert!(
                said.starts_with("probe 1\n") && said.ends_with("end ok\n"),
                "{said}"
            );
            assert!(
                said.contains("bin.sha256 "),
                "the probe at `sums` hashes the binary: {said}"
            );
            assert_eq!(h.line(), "hb 1", "the waiting heartbeat is echoed");
            assert!(!is_free(&path), "held after the probe");
            let pid = h.child.id();
            for fd in [0, 1, 2, 9] {
                assert!(
                    Path::new(&format!("/proc/{pid}/fd/{fd}")).exists(),
                    "fd {fd}"
                );
            }
            // (fd 3 may now be the pipe of the heartbeat's command substitution.)
            let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("fds");
            for fd in fds {
                let target = std::fs::read_link(fd.expect("fd").path()).unwrap_or_default();
                assert_ne!(target, binary, "the probe's hold on the binary is let go");
            }
            assert_eq!(Holder::parse(&text(&path)).pid, Some(pid));
            drop(h.stdin.take());
            assert!(h.exits_within(Duration::from_secs(5)).is_some());
            assert!(is_free(&path));
            assert_eq!(text(&path), "", "the owner line is cleared");
        }

        #[test]
        fn a_busy_lock_runs_no_probe() {
            let (dir, path) = lock_file();
            let _first = take(&path, "30");
            let binary = dir.path().join("nginx");
            let cmd = lock_observing(
                &Layout::plain(binary.to_str().expect("utf-8").parse().expect("path")),
                "second",
                Heartbeat::new(30),
                [
                    "/nonexistent.pid".into(),
                    "/nonexistent".into(),
                    "sums".into(),
                ],
            );
            let args: Vec<&str> = cmd.args().iter().map(String::as_str).collect();
            let out = run(cmd.source(), &args);
            assert_eq!(out.status.code(), Some(75));
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.starts_with("busy test-ctl pid 1; holder pid "),
                "{text}"
            );
            assert_eq!(text.lines().count(), 1, "{text}");
        }

        #[test]
        fn end_of_input_releases_the_lock_at_once() {
            let (_dir, path) = lock_file();
            let mut h = take(&path, "30");
            h.stdin = None;
            assert!(h.exits_within(Duration::from_secs(3)).is_some());
            assert!(is_free(&path));
        }

        #[test]
        fn a_second_taker_is_refused_naming_the_holder() {
            let (_dir, path) = lock_file();
            let h = take(&path, "30");
            let out = run(LOCK, &[path.to_str().expect("utf-8"), "second", "30"]);
            assert_eq!(out.status.code(), Some(75));
            let stdout = String::from_utf8_lossy(&out.stdout);
            let owner = stdout.trim().strip_prefix("busy ").expect("busy line");
            let holder = Holder::parse(owner);
            assert_eq!(holder.controller, "test-ctl pid 1");
            assert_eq!(holder.pid, Some(h.child.id()));
            assert!(!is_free(&path), "the refused taker changed nothing");
            assert!(text(&path).starts_with("test-ctl pid 1; holder pid "));
        }

        #[test]
        fn unlock_kills_only_the_verified_holder() {
            let (_dir, path) = lock_file();
            let p = path.to_str().expect("utf-8");
            let mut h = take(&path, "30");
            let pid = h.child.id();
            let state = run(STATE, &[p]);
            let LockState::Held(holder) =
                parse_state(&String::from_utf8_lossy(&state.stdout)).expect("state")
            else {
                panic!("expected held: {state:?}");
            };
            assert_eq!(holder.pid, Some(pid));
            // A process that does not hold the lock is never killed.
            let me = std::process::id().to_string();
            let wrong = run(UNLOCK, &[p, &me]);
            assert_eq!(wrong.status.code(), Some(4));
            let reason =
                parse_unlock(&String::from_utf8_lossy(&wrong.stdout)).expect_err("refused");
            assert!(reason.contains("does not hold"), "{reason}");
            assert!(!is_free(&path));
            let broken = run(UNLOCK, &[p, &pid.to_string()]);
            assert_eq!(
                parse_unlock(&String::from_utf8_lossy(&broken.stdout)),
                Ok(Broken::Released { pid }),
                "{broken:?}"
            );
            assert!(h.exits_within(Duration::from_secs(3)).is_some());
            assert!(is_free(&path));
            assert_eq!(text(&path), "");
            let state = run(STATE, &[p]);
            assert_eq!(
                parse_state(&String::from_utf8_lossy(&state.stdout)),
                Ok(LockState::Free)
            );
            let again = run(UNLOCK, &[p, &pid.to_string()]);
            assert_eq!(
                parse_unlock(&String::from_utf8_lossy(&again.stdout)),
                Ok(Broken::Free)
            );
        }

        #[test]
        fn unlock_without_a_recorded_pid_finds_the_one_holder() {
            let (_dir, path) = lock_file();
            let p = path.to_str().expect("utf-8");
            let mut h = take(&path, "30");
            let pid = h.child.id();
            std::fs::write(&path, "an older ngfleet\n").expect("write");
            let broken = run(UNLOCK, &[p, ""]);
            assert_eq!(
                parse_unlock(&String::from_utf8_lossy(&broken.stdout)),
                Ok(Broken::Released { pid }),
                "{broken:?}"
            );
            assert!(h.exits_within(Duration::from_secs(3)).is_some());
            assert!(is_free(&path));
        }

        #[test]
        fn a_missing_lock_file_reads_as_free_and_is_not_created() {
            let (_dir, path) = lock_file();
            let p = path.to_str().expect("utf-8");
            let state = run(STATE, &[p]);
            assert_eq!(
                parse_state(&String::from_utf8_lossy(&state.stdout)),
                Ok(LockState::Free)
            );
            let unlocked = run(UNLOCK, &[p, ""]);
            assert_eq!(
                parse_unlock(&String::from_utf8_lossy(&unlocked.stdout)),
                Ok(Broken::Free)
            );
            assert!(!path.exists());
        }
    }
}
