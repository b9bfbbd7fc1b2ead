//! The one way integration tests run `ngfleet`: a `#[must_use]` builder that runs the binary
//! in a scratch directory with given files, arguments, environment and stdin, optionally
//! against a [`Lab`], checks its exit code within a time limit, and hands back what it printed
//! and its parsed journal.
//!
//! ```ignore
//! let out = Test::new()
//!     .lab(&lab)                      // -i LAB/inventory.yaml
//!     .args(["roll", "--json"])
//!     .spec("hosts: lab\n")           // spec.yaml, -p spec.yaml
//!     .binary("nginx-new")            // --binary LAB/versions/nginx-new
//!     .journal("run.jsonl")           // --journal run.jsonl (in the scratch directory)
//!     // -p, --binary, --journal and -i go after every other argument (the subcommand's).
//!     .code(1)
//!     .run();
//! assert_eq!(out.result_of("lab-01"), "rolled_back");
//! ```
//!
//! The scratch directory is also `XDG_STATE_HOME`, so a run without `--journal` writes its
//! journal there, never under the real `~/.local/state`, and `HOME`, so the machine's
//! `~/.ssh/config` (and default keys and known_hosts) never reach a test (`/etc/ssh/ssh_config`
//! still does: Debian's stock one changes nothing; tests that need a config pass
//! `--ssh-config`). `SSH_AUTH_SOCK` and `NGFLEET_KEY_PASSPHRASE` are removed from the
//! environment unless a test sets them.

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::lab::{Lab, wait_until};

/// How long a run may take unless a test says otherwise: a hang fails, it does not hang.
const DEFAULT_LIMIT: Duration = Duration::from_secs(300);

/// Where the scratch directory's `XDG_STATE_HOME` points, relative to it.
const STATE: &str = "state";

#[must_use = "a Test does nothing until .run() or .spawn()"]
pub struct Test<'l> {
    dir: tempfile::TempDir,
    args: Vec<OsString>,
    /// Options that go after `args` (and so after the subcommand): `-p`, `--binary`,
    /// `--journal`, `-i`.
    tail: Vec<OsString>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
    expected_codes: Vec<i32>,
    limit: Duration,
    lab: Option<&'l Lab>,
}

impl<'l> Test<'l> {
    pub fn new() -> Test<'l> {
        Test {
            dir: tempfile::tempdir().expect("tempdir"),
            args: Vec::new(),
            tail: Vec::new(),
            env: Vec::new(),
            stdin: None,
            expected_codes: vec![0],
            limit: DEFAULT_LIMIT,
            lab: None,
        }
    }

    /// Runs against `lab`: `-i` names the lab's inventory, after the other arguments (unless
    /// they give `-i` or `--inventory` themselves), and [`Test::binary`] names the lab's test binaries.
    pub fn lab(mut self, lab: &'l Lab) -> Test<'l> {
        self.lab = Some(lab);
        self
    }

    /// Writes a file (relative to the scratch directory).
    pub fn file(self, name: &str, text: &str) -> Test<'l> {
        self.bytes(name, text.as_bytes())
    }

    /// Writes a file of raw bytes (relative to the scratch directory).
    pub fn bytes(self, name: &str, bytes: &[u8]) -> Test<'l> {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(path, bytes).expect("write");
        self
    }

    /// Copies a file of the repository into the scratch directory under the same name.
    pub fn repo_file(self, name: &str) -> Test<'l> {
        let text = fs::read_to_string(repo().join(name)).expect("repo file");
        self.file(name, &text)
    }

    /// Writes `spec.yaml` and passes `-p spec.yaml` (after the other arguments).
    pub fn spec(self, text: &str) -> Test<'l> {
        self.file("spec.yaml", text).tail(["-p", "spec.yaml"])
    }

    fn tail<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Test<'l> {
        self.tail.extend(args.into_iter().map(Into::into));
        self
    }

    /// `--binary LAB/versions/VERSION` (after the other arguments; needs [`Test::lab`]
    /// first).
    pub fn binary(self, version: &str) -> Test<'l> {
        let lab = self.lab.expect("Test::binary needs Test::lab first");
        let path = lab.dir.join("versions").join(version);
        self.tail([OsString::from("--binary"), path.into()])
    }

    /// `--journal NAME` (relative to the scratch directory); the journal is parsed after the
    /// run. Without it, the journal is found from the `journal: PATH` line on stderr, or in
    /// the scratch directory's state directory.
    pub fn journal(self, name: &str) -> Test<'l> {
        self.tail(["--journal", name])
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Test<'l> {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Test<'l> {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Test<'l> {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// What the run reads on stdin (nothing, by default: stdin is /dev/null).
    pub fn stdin(mut self, text: &str) -> Test<'l> {
        self.stdin = Some(text.as_bytes().to_vec());
        self
    }

    /// The exit code the run must end with (0 unless told).
    pub fn code(self, code: i32) -> Test<'l> {
        self.codes(&[code])
    }

    /// The exit codes the run may end with, when more than one outcome is right.
    pub fn codes(mut self, codes: &[i32]) -> Test<'l> {
        self.expected_codes = codes.to_vec();
        self
    }

    /// The run must end within `limit` (300 s unless told): it is killed and the test fails
    /// otherwise.
    pub fn within(mut self, limit: Duration) -> Test<'l> {
        self.limit = limit;
        self
    }

    /// A path in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs to the end and checks the exit code; returns what the run printed and wrote.
    #[track_caller]
    pub fn run(self) -> Output {
        self.spawn().wait()
    }

    /// Starts the run; see [`Running`].
    #[track_caller]
    pub fn spawn(self) -> Running {
        let mut args = self.args.clone();
        args.extend(self.tail.iter().cloned());
        let given = |flag: &str| args.iter().any(|a| a == flag);
        if let Some(lab) = self.lab
            && !given("-i")
            && !given("--inventory")
        {
            args.push("-i".into());
            args.push(lab.inventory().into());
        }
        let what = format!(
            "ngfleet {}",
            args.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let explicit_journal = args
            .iter()
            .position(|a| a == "--journal")
            .and_then(|i| args.get(i + 1))
            .map(|p| self.dir.path().join(p));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ngfleet"));
        cmd.args(&args)
            .current_dir(self.dir.path())
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("NGFLEET_KEY_PASSPHRASE")
            .env("XDG_STATE_HOME", self.dir.path().join(STATE))
            // The machine's ~/.ssh/config is none of a test's business.
            .env("HOME", self.dir.path())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
        if let Some(bytes) = self.stdin
            && let Some(mut pipe) = child.stdin.take()
        {
            // A thread of its own, so a run that does not read its stdin cannot block us.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            reader(child.stdout.take().expect("stdout"), Arc::clone(&stdout)),
            reader(child.stderr.take().expect("stderr"), Arc::clone(&stderr)),
        ];
        Running {
            what,
            dir: Some(self.dir),
            child,
            started: Instant::now(),
            limit: self.limit,
            expected_codes: self.expected_codes,
            explicit_journal,
            stdout,
            stderr,
            readers,
        }
    }
}

fn reader(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock().expect("output").extend_from_slice(&buf[..n]);
        }
    })
}

/// A run in flight. Killed (SIGKILL) when dropped unreaped, so a failing test leaves no
/// controller behind.
pub struct Running {
    what: String,
    dir: Option<tempfile::TempDir>,
    child: Child,
    started: Instant,
    limit: Duration,
    expected_codes: Vec<i32>,
    explicit_journal: Option<PathBuf>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Every event the run has emitted so far: its journal (when `--journal` was given) and
    /// its `--json` stdout (when stdout is JSON).
    fn events_so_far(&self) -> Vec<Value> {
        let mut events = self
            .explicit_journal
            .as_deref()
            .map(|p| json_lines(&fs::read_to_string(p).unwrap_or_default(), true))
            .unwrap_or_default();
        let stdout = String::from_utf8_lossy(&self.stdout.lock().expect("stdout")).into_owned();
        if stdout.starts_with('{') {
            events.extend(json_lines(&stdout, true));
        }
        events
    }

    /// Waits until an event of the journal or of the `--json` stream satisfies `pred`. False
    /// when `limit` passes or the run ends first.
    pub fn wait_for(&mut self, limit: Duration, pred: impl Fn(&Value) -> bool) -> bool {
        let started = Instant::now();
        loop {
            if self.events_so_far().iter().any(&pred) {
                return true;
            }
            if self.exited() || started.elapsed() >= limit {
                // One last look at what the readers may still have had in flight.
                std::thread::sleep(Duration::from_millis(100));
                return self.events_so_far().iter().any(&pred);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal by name (`INT`, `TERM`, …).
    pub fn signal(&self, sig: &str) {
        let sent = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status();
        assert!(
            sent.is_ok_and(|s| s.success()),
            "kill -{sig} {}",
            self.pid()
        );
    }

    /// SIGKILL, as a crash would: no chance to clean up. The exit code is not checked.
    pub fn kill(mut self) -> Output {
        let _ = self.child.kill();
        self.collect()
    }

    /// Waits for the end (within the run's limit: a run that overruns it is killed and fails
    /// the test) and checks the exit code.
    #[track_caller]
    pub fn wait(self) -> Output {
        let expected = self.expected_codes.clone();
        let out = self.finish();
        assert!(
            out.code.is_some_and(|c| expected.contains(&c)),
            "exit code {:?}, expected {}\n{}",
            out.code,
            expected
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(" or "),
            out.show()
        );
        out
    }

    /// Waits for the end within the run's limit, whatever the exit code.
    #[track_caller]
    fn finish(mut self) -> Output {
        let remaining = self.limit.saturating_sub(self.started.elapsed());
        if !wait_until(remaining, || self.exited()) {
            let limit = self.limit;
            let out = self.kill();
            panic!("did not end within {limit:?}\n{}", out.show());
        }
        self.collect()
    }

    fn collect(&mut self) -> Output {
        let status = self.child.wait().expect("wait");
        // The pipes close with the process; a gate's child that kept them open is not
        // waited for beyond a few seconds.
        let readers = std::mem::take(&mut self.readers);
        wait_until(Duration::from_secs(5), || {
            readers.iter().all(JoinHandle::is_finished)
        });
        let stdout = String::from_utf8_lossy(&self.stdout.lock().expect("stdout")).into_owned();
        let stderr = String::from_utf8_lossy(&self.stderr.lock().expect("stderr")).into_owned();
        let dir = self.dir.take().expect("collected once");
        let killed = status.code().is_none();
        let journal_path = self
            .explicit_journal
            .clone()
            .filter(|p| p.exists())
            .or_else(|| announced_journal(&stderr, dir.path()))
            .or_else(|| state_journal(dir.path()));
        let journal = journal_path
            .as_deref()
            .map(|p| {
                let text = fs::read_to_string(p)
                    .unwrap_or_else(|e| panic!("{}: journal {}: {e}", self.what, p.display()));
                json_lines(&text, killed)
            })
            .unwrap_or_default();
        let json = if stdout.trim_start().starts_with('{') {
            match serde_json::from_str::<Value>(&stdout) {
                Ok(document) => vec![document],
                Err(_) => json_lines(&stdout, true),
            }
        } else {
            Vec::new()
        };
        Output {
            what: self.what.clone(),
            dir,
            code: status.code(),
            stdout,
            stderr,
            journal_path,
            journal,
            json,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.exited() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The path of a `journal: PATH` line on stderr, relative paths taken from `dir`.
fn announced_journal(stderr: &str, dir: &Path) -> Option<PathBuf> {
    let path = stderr.lines().find_map(|l| l.strip_prefix("journal: "))?;
    Some(dir.join(path.trim()))
}

/// The one journal under the scratch directory's `XDG_STATE_HOME`, if any.
fn state_journal(dir: &Path) -> Option<PathBuf> {
    let runs = dir.join(STATE).join("ngfleet/runs");
    let mut found: Vec<PathBuf> = fs::read_dir(runs)
        .ok()?
        .filter_map(|e| Some(e.ok()?.path()))
        .collect();
    assert!(found.len() <= 1, "more than one journal: {found:?}");
    found.pop()
}

/// JSON lines. Every line must parse, except that an unfinished last line (no newline) is
/// left out when `partial_tail` (a run killed or still running).
fn json_lines(text: &str, partial_tail: bool) -> Vec<Value> {
    let complete = if partial_tail && !text.ends_with('\n') {
        text.rsplit_once('\n').map_or("", |(done, _)| done)
    } else {
        text
    };
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// A finished run.
pub struct Output {
    what: String,
    /// The scratch directory, kept alive for checks after the run.
    pub dir: tempfile::TempDir,
    /// None when the run was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// Where the journal was, if the run wrote one.
    pub journal_path: Option<PathBuf>,
    /// The journal's events, in order (empty when there is none).
    pub journal: Vec<Value>,
    /// Stdout as JSON: the one document `plan --json` and `status --json` print, or the
    /// events of `roll --json` (empty when stdout is not JSON).
    pub json: Vec<Value>,
}

impl Output {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The command, its exit code and everything it printed, for failure messages.
    pub fn show(&self) -> String {
        format!(
            "{} exited with {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }

    /// Stdout and stderr, for text checks.
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Stdout as one JSON document (`status --json`, `plan --json`).
    #[track_caller]
    pub fn json(&self) -> &Value {
        match self.json.as_slice() {
            [document] => document,
            _ => panic!("stdout is not one JSON document\n{}", self.show()),
        }
    }

    /// The journal's events of one kind (`host_finished`, `step`, …).
    pub fn events(&self, kind: &str) -> Vec<&Value> {
        self.journal.iter().filter(|e| e["event"] == kind).collect()
    }

    /// The `--json` stream's events of one kind.
    pub fn json_events(&self, kind: &str) -> Vec<&Value> {
        self.json.iter().filter(|e| e["event"] == kind).collect()
    }

    /// The last `host_finished` event of `host` in the journal.
    #[track_caller]
    pub fn finished(&self, host: &str) -> &Value {
        self.journal
            .iter()
            .rfind(|e| e["event"] == "host_finished" && e["host"] == host)
            .unwrap_or_else(|| panic!("no host_finished event for {host}\n{}", self.show()))
    }

    /// The result of `host` (`upgraded`, `rolled_back`, `skipped`, …), from its
    /// `host_finished` event.
    #[track_caller]
    pub fn result_of(&self, host: &str) -> &str {
        let finished = self.finished(host);
        finished["result"]
            .as_str()
            .unwrap_or_else(|| panic!("no result in {finished}\n{}", self.show()))
    }

    /// The journal's summary, which must be its last event; with `--json`, the last line of
    /// stdout must be the same summary.
    #[track_caller]
    pub fn summary(&self) -> &Value {
        let last = self.journal.last().unwrap_or(&Value::Null);
        assert_eq!(
            last["event"],
            "summary",
            "the journal's last event is the summary\n{}",
            self.show()
        );
        if let Some(streamed) = self.json.last()
            && self.json.len() > 1
        {
            assert_eq!(
                streamed,
                last,
                "the last line of --json is the journal's summary\n{}",
                self.show()
            );
        }
        last
    }

    /// Host names in one list of the summary (`upgraded`, `rolled_back`, `unrestored`, …),
    /// sorted.
    #[track_caller]
    pub fn hosts(&self, list: &str) -> Vec<String> {
        let mut names: Vec<String> = self.summary()["hosts"][list]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Asserts the summary's result (`succeeded`, `failed`, `paused`, …).
    #[track_caller]
    pub fn expect_result(&self, result: &str) -> &Output {
        assert_eq!(
            self.summary()["result"],
            result,
            "summary result\n{}",
            self.show()
        );
        self
    }
}

/// `ngfleet status --json` against `lab`, parsed. Its exit code must agree with what it says:
/// 0 when every host is steady or draining, 1 otherwise.
#[track_caller]
/// `ngfleet VERB` against the lab with `spec`, the lab's `nginx-new`, and a journal in the
/// scratch directory (`rollback` with `--yes`: more than one host, no terminal). Exit 0
/// unless told otherwise.
pub fn rollout<'l>(lab: &'l Lab, spec: &str, verb: &str) -> Test<'l> {
    let test = Test::new()
        .lab(lab)
        .spec(spec)
        .binary("nginx-new")
        .arg(verb)
        .journal("run.jsonl");
    if verb == "rollback" {
        test.arg("--yes")
    } else {
        test
    }
}

pub fn status(lab: &Lab) -> Value {
    status_with(Test::new().lab(lab))
}

/// `ngfleet status --json` with `test`'s files and arguments; the exit code is checked as
/// [`status`] does.
#[track_caller]
pub fn status_with(test: Test<'_>) -> Value {
    // The exit code is checked below, against the states.
    let out = test
        .args(["status", "--json"])
        .within(Duration::from_secs(120))
        .spawn()
        .finish();
    let v = out.json().clone();
    let hosts = v["hosts"]
        .as_array()
        .unwrap_or_else(|| panic!("no hosts\n{}", out.show()));
    // A draining host (an old master still serving slow clients) is at rest too.
    let at_rest = hosts
        .iter()
        .all(|h| h["state"] == "steady" || h["state"] == "draining");
    assert_eq!(
        out.code,
        Some(if at_rest { 0 } else { 1 }),
        "status exits 0 exactly when every host is steady or draining\n{}",
        out.show()
    );
    v
}

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
