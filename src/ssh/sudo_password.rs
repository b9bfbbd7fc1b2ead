//! sudo with a password (`--ask-become-pass`, `NGFLEET_BECOME_PASSWORD`): the password as a
//! validated, never-printed value ([`BecomePassword`]), the wrapper that hands it to sudo on the
//! host without it ever being on a command line, and how its refusal is recognised.
//!
//! The line sent to the host is `sh -c SCRIPT ngfleet ARG…` wrapped in `sudo -n --` as before,
//! preceded by a few words run by the login user's shell:
//!
//! ```text
//! set +xv; IFS= read -r p; command -v sudo >/dev/null 2>&1 || { NOT FOUND; exit 127; };
//! printf '%s\n' "$p" | sudo -S -v -p '' || { MARKER; exit 125; }; unset p;
//! sudo -n -- sh -c SCRIPT ngfleet ARG…; exit $?
//! ```
//!
//! `set +xv` first: a login shell whose start-up files turn on tracing would otherwise print
//! the `printf` line, password and all, on stderr. A host without sudo exits 127 with the
//! shell's own words, recognised as "sudo is not installed", not as a refused password.
//!
//! The controller sends the password as the first line of the command's stdin, before any
//! other input (an upload's bytes, the lock's heartbeats). The shell reads exactly that line
//! (`read` takes a pipe byte by byte), and `printf` is a builtin of every POSIX shell, so the
//! password is in no process's argv. `sudo -v` checks it and caches a ticket; without a
//! terminal, sudo keys the ticket by the parent process (`timestamp_type=tty`, Debian's
//! default, falls back to the parent pid; `ppid` and `global` work too), and both sudo
//! processes are children of the same shell (the trailing `exit $?` keeps the shell from
//! `exec`ing the second one). So the command itself runs under `sudo -n` and reads the rest of
//! stdin: a host whose sudo needs no password never passes the password to the command. `-k`
//! is not used: with `-v` it makes sudo check the password without caching the ticket, and the
//! `sudo -n` after it would be refused. A wrong password makes `sudo -S` read end-of-input at
//! its second try: it fails at once, and the wrapper prints [`REFUSED_MARKER`] and exits 125.

use std::fmt;

/// The environment variable that gives the become password (for automation).
pub const BECOME_PASSWORD_ENV: &str = "NGFLEET_BECOME_PASSWORD";

/// What the wrapper prints on stderr when sudo refused the password (or refused the user).
pub(crate) const REFUSED_MARKER: &str = "ngfleet: sudo refused the password";
/// The wrapper's exit code then.
pub(crate) const REFUSED_EXIT: u32 = 125;

/// A sudo password: one line of text, never shown (`Debug` is redacted, there is no
/// `Display`).
#[derive(Clone, PartialEq, Eq)]
pub struct BecomePassword(String);

/// Why a text cannot be a sudo password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BecomePasswordError {
    #[error("the become password is empty")]
    Empty,
    #[error("the become password contains a newline (it is sent to sudo as one line)")]
    Newline,
    #[error("the become password contains a nul byte")]
    Nul,
}

impl BecomePassword {
    /// Checks `text`: non-empty, one line, no NUL (a trailing `\n` or `\r\n` is dropped, as a
    /// terminal or `echo` adds it).
    pub fn new(text: impl Into<String>) -> Result<Self, BecomePasswordError> {
        let mut text = text.into();
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        if text.is_empty() {
            Err(BecomePasswordError::Empty)
        } else if text.contains('\n') || text.contains('\r') {
            Err(BecomePasswordError::Newline)
        } else if text.contains('\0') {
            Err(BecomePasswordError::Nul)
        } else {
            Ok(Self(text))
        }
    }

    /// The first stdin line of a wrapped command.
    pub(crate) fn stdin_line(&self) -> Vec<u8> {
        let mut line = Vec::with_capacity(self.0.len() + 1);
        line.extend_from_slice(self.0.as_bytes());
        line.push(b'\n');
        line
    }
}

impl fmt::Debug for BecomePassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BecomePassword(<redacted>)")
    }
}

/// `sudo_line` (a rendered `sudo -n -- sh -c …` line) preceded by the password check.
pub(crate) fn wrap(sudo_line: &str) -> String {
    format!(
        "set +xv; IFS= read -r p; command -v sudo >/dev/null 2>&1 || \
         {{ echo 'sh: sudo: not found' >&2; exit 127; }}; \
         printf '%s\\n' \"$p\" | sudo -S -v -p '' || \
         {{ printf '%s\\n' '{REFUSED_MARKER}' >&2; exit {REFUSED_EXIT}; }}; unset p; \
         {sudo_line}; exit $?"
    )
}

/// Whether a wrapped command's result says sudo refused the password.
pub(crate) fn refused(code: u32, stderr: &str) -> bool {
    code == REFUSED_EXIT && stderr.lines().any(|l| l.trim() == REFUSED_MARKER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_one_line_and_never_shown() {
        let pw = BecomePassword::new("hunter 2\n").expect("valid");
        assert_eq!(pw.stdin_line(), b"hunter 2\n");
        assert!(!format!("{pw:?}").contains("hunter"));
        assert_eq!(
            BecomePassword::new("a\r\n").map(|p| p.stdin_line()),
            Ok(b"a\n".to_vec())
        );
        assert_eq!(BecomePassword::new("\n"), Err(BecomePasswordError::Empty));
        assert_eq!(
            BecomePassword::new("a\nb"),
            Err(BecomePasswordError::Newline)
        );
        assert_eq!(BecomePassword::new("a\0b"), Err(BecomePasswordError::Nul));
    }

    /// The wrapper through a real `sh`, with a fake `sudo` on PATH that records its argv and
    /// what it read: the password reaches only `sudo -S -v` on its stdin, never an argv,
    /// and the command gets the rest of stdin.
    #[test]
    fn wrapper_feeds_the_password_to_sudo_validate_only() {
        let dir = std::env::temp_dir().join(format!("ngssh-sudo-pw-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(std::fs::create_dir_all(&dir).is_ok());
        let log = dir.join("log");
        let fake = format!(
            "#!/bin/sh\nprintf 'argv:%s\\n' \"$*\" >> '{log}'\n\
             case \"$1\" in -S) IFS= read -r got; printf 'validate-read:%s\\n' \"$got\" >> '{log}'; \
             [ \"$got\" = right ] || exit 1 ;; \
             -n) shift 2; exec \"$@\" ;; esac\n",
            log = log.display()
        );
        let sudo = dir.join("sudo");
        assert!(std::fs::write(&sudo, fake).is_ok());
        let made = std::process::Command::new("chmod")
            .arg("+x")
            .arg(&sudo)
            .status();
        assert!(made.is_ok_and(|s| s.success()));
        let inner = "sudo -n -- sh -c 'cat; echo done' ngfleet";
        let run = |input: &str| {
            let _ = std::fs::remove_file(&log);
            let mut child = std::process::Command::new("sh")
                .arg("-c")
                .arg(wrap(inner))
                .env("PATH", format!("{}:/usr/bin:/bin", dir.display()))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("sh runs");
            use std::io::Write;
            let _ = child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes());
            let out = child.wait_with_output().expect("sh ends");
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            (out, log)
        };
        let (out, log_text) = run("right\npayload\n");
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "payload\ndone\n");
        assert!(log_text.contains("validate-read:right\n"), "{log_text}");
        assert!(
            log_text
                .lines()
                .all(|l| !l.starts_with("argv:") || !l.contains("right")),
            "{log_text}"
        );
        let (out, _) = run("wrong\npayload\n");
        assert_eq!(out.status.code(), Some(REFUSED_EXIT as i32));
        assert!(refused(REFUSED_EXIT, &String::from_utf8_lossy(&out.stderr)));
        assert!(out.stdout.is_empty(), "the command did not run");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
