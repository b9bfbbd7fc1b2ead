//! A fluent builder for running `ngfleet` in a scratch directory with given files.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    expected_code: i32,
}

pub struct Outcome {
    /// The scratch directory, kept alive for checks after the run.
    pub dir: tempfile::TempDir,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Test {
    pub fn new() -> Test {
        Test {
            dir: tempfile::tempdir().expect("tempdir"),
            args: Vec::new(),
            env: Vec::new(),
            expected_code: 0,
        }
    }

    /// Writes a file (relative to the scratch directory).
    pub fn file(self, name: &str, text: &str) -> Test {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(path, text).expect("write");
        self
    }

    /// Copies a file of the repository into the scratch directory under the same name.
    pub fn repo_file(self, name: &str) -> Test {
        let text = fs::read_to_string(repo().join(name)).expect("repo file");
        self.file(name, &text)
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Test {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Test {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn code(mut self, code: i32) -> Test {
        self.expected_code = code;
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file of raw bytes (relative to the scratch directory).
    pub fn bytes(self, name: &str, bytes: &[u8]) -> Test {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(path, bytes).expect("write");
        self
    }

    /// Runs the binary and checks the exit code; returns the output for further checks.
    pub fn run(self) -> Outcome {
        let output = self.command().output().expect("run ngfleet");
        self.outcome(output)
    }

    /// Like [`Test::run`], but the run must end within `limit`: it is killed and the test
    /// fails otherwise (a hang fails the test instead of hanging it).
    pub fn run_within(self, limit: Duration) -> Outcome {
        let mut child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ngfleet");
        let started = Instant::now();
        while child.try_wait().expect("wait").is_none() {
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ngfleet {:?} still ran after {limit:?}", self.args);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let output = child.wait_with_output().expect("output");
        self.outcome(output)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ngfleet"));
        cmd.args(&self.args)
            .current_dir(self.dir.path())
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("NGFLEET_KEY_PASSPHRASE")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd
    }

    fn outcome(self, output: Output) -> Outcome {
        let outcome = Outcome {
            dir: self.dir,
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        assert_eq!(
            outcome.code, self.expected_code,
            "ngfleet {:?}\nstdout:\n{}\nstderr:\n{}",
            self.args, outcome.stdout, outcome.stderr
        );
        outcome
    }
}

impl Outcome {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
