//! Remote commands: a trusted, fixed shell script plus untrusted positional
//! arguments, rendered as one POSIX shell line with every word quoted
//! (`sh -c SCRIPT ngfleet ARG...`, wrapped in `sudo -n --` when privileged on
//! a `Sudo` host), and recognising sudo's refusals in the result.
//!
//! The line is run by the login user's shell (`$SHELL -c LINE`), which must be
//! POSIX-like (sh, dash, bash, zsh, ksh).

use super::error::ArgumentProblem;
use super::session::ExitStatus;
use super::sudo_password::{self, BecomePassword};
use super::target::Privilege;

/// `$0` of every script.
const SCRIPT_NAME: &str = "ngfleet";
/// Longest default label (first script line) shown in errors.
const LABEL_MAX: usize = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elevation {
    LoginUser,
    Privileged,
}

/// A command to run on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCommand {
    script: &'static str,
    args: Vec<String>,
    elevation: Elevation,
    label: String,
}

/// An argument that cannot be passed through a shell safely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("argument ${index} {problem}")]
pub struct ArgumentError {
    /// Position as the script sees it: `$1` is 1; 0 is the script itself.
    pub index: usize,
    pub problem: ArgumentProblem,
}

impl RemoteCommand {
    /// A fixed script (trusted, from our source code) with positional
    /// arguments `$1`, `$2`, ... passed verbatim. Arguments containing a NUL
    /// byte or a newline are refused when the command is rendered.
    pub fn script(script: &'static str, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            script,
            args: args.into_iter().map(Into::into).collect(),
            elevation: Elevation::LoginUser,
            label: default_label(script),
        }
    }

    /// Marks the command as needing root: wrapped in `sudo -n --` on hosts
    /// whose privilege is [`Privilege::Sudo`].
    #[must_use]
    pub fn privileged(mut self) -> Self {
        self.elevation = Elevation::Privileged;
        self
    }

    /// Names the step in errors (default: the script's first line).
    #[must_use]
    pub fn labelled(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// The fixed script (for a simulated host that recognises our scripts).
    pub fn source(&self) -> &'static str {
        self.script
    }

    pub fn args(&self) -> &[String] {
        &self.args
    }

    pub fn is_privileged(&self) -> bool {
        self.elevation == Elevation::Privileged
    }

    /// Whether this command goes through sudo on a host with `privilege`.
    pub(crate) fn uses_sudo(&self, privilege: &Privilege) -> bool {
        self.is_privileged() && *privilege == Privilege::Sudo
    }

    /// The command line sent to the host.
    pub fn render(&self, privilege: &Privilege) -> Result<String, ArgumentError> {
        check(0, self.script, ArgumentProblem::Nul)?;
        for (i, arg) in self.args.iter().enumerate() {
            check(i + 1, arg, ArgumentProblem::Newline)?;
            check(i + 1, arg, ArgumentProblem::Nul)?;
        }
        let sudo: &[&str] = if self.uses_sudo(privilege) {
            &["sudo", "-n", "--"]
        } else {
            &[]
        };
        let words = sudo
            .iter()
            .copied()
            .chain(["sh", "-c", self.script, SCRIPT_NAME])
            .chain(self.args.iter().map(String::as_str));
        shlex::try_join(words).map_err(|_| ArgumentError {
            index: 0,
            problem: ArgumentProblem::Nul,
        })
    }

    /// The line sent to a host whose sudo takes `password` (if any), and what goes on the
    /// command's stdin before anything else: with a password, a sudo command is wrapped so
    /// that its login shell reads the password line first (`sudo_password.rs`).
    pub(crate) fn render_for(
        &self,
        privilege: &Privilege,
        password: Option<&BecomePassword>,
    ) -> Result<(String, Option<Vec<u8>>), ArgumentError> {
        let line = self.render(privilege)?;
        match password {
            Some(password) if self.uses_sudo(privilege) => {
                Ok((sudo_password::wrap(&line), Some(password.stdin_line())))
            }
            _ => Ok((line, None)),
        }
    }
}

fn check(index: usize, value: &str, problem: ArgumentProblem) -> Result<(), ArgumentError> {
    let bad = match problem {
        ArgumentProblem::Nul => value.contains('\0'),
        ArgumentProblem::Newline => value.contains('\n'),
    };
    if bad {
        Err(ArgumentError { index, problem })
    } else {
        Ok(())
    }
}

fn default_label(script: &str) -> String {
    let first = script
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    match first.char_indices().nth(LABEL_MAX) {
        Some((cut, _)) => format!("{}...", &first[..cut]),
        None => first.to_owned(),
    }
}

/// If a `sudo -n` command failed because sudo refused it, sudo's reason.
///
/// sudo exits 1 and prints `sudo: a password is required` (or a sudoers
/// refusal); a missing sudo makes the shell exit 127.
///
/// A command wrapped for a password (`sudo_password.rs`) exits 125 with its marker when
/// `sudo -S -v` refused: sudo's own reason if it gave one, else that the password was refused.
pub(crate) fn sudo_refusal(status: &ExitStatus, stderr: &[u8]) -> Option<String> {
    const REFUSALS: &[&str] = &[
        "a password is required",
        "a terminal is required",
        "must have a tty",
        "no tty present",
        "is not in the sudoers file",
        "is not allowed to",
        "may not run sudo",
    ];
    let stderr = String::from_utf8_lossy(stderr);
    let reason = |stderr: &str| {
        stderr
            .lines()
            .filter_map(|l| l.trim().strip_prefix("sudo: "))
            .find(|l| REFUSALS.iter().any(|r| l.contains(r)))
            .map(|l| l.trim_end_matches('.').to_owned())
    };
    match status {
        ExitStatus::Code(code) if sudo_password::refused(*code, &stderr) => Some(
            reason(&stderr)
                .or_else(|| {
                    // `Sorry, user X may not run sudo on H.` has no `sudo: ` prefix.
                    stderr
                        .lines()
                        .map(str::trim)
                        .find(|l| l.contains("may not run sudo"))
                        .map(|l| l.trim_end_matches('.').to_owned())
                })
                .unwrap_or_else(|| "sudo refused the password".to_owned()),
        ),
        ExitStatus::Code(1) => reason(&stderr),
        ExitStatus::Code(127) => stderr
            .lines()
            .any(|l| l.contains("sudo: not found") || l.contains("sudo: command not found"))
            .then(|| "sudo is not installed".to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NASTY: &[&str] = &[
        "plain",
        "with space",
        "it's",
        "\"double\"",
        "a;b && c || d",
        "$(touch /tmp/pwned)",
        "`id`",
        "$HOME ${x:-y}",
        "back\\slash",
        "*",
        "~root",
        "-n",
        "",
        "tab\there",
        "cr\rhere",
        "ünïcødé ✓",
        "!bang ^caret #hash {a,b}",
        "'",
    ];

    #[test]
    fn renders_quoted_script_and_args() {
        let cmd = RemoteCommand::script("printf %s \"$1\"", ["a b"]);
        assert_eq!(
            cmd.render(&Privilege::Sudo).as_deref(),
            Ok("sh -c 'printf %s \"$1\"' ngfleet 'a b'")
        );
        let sudo = cmd.clone().privileged();
        assert_eq!(
            sudo.render(&Privilege::Sudo).as_deref(),
            Ok("sudo -n -- sh -c 'printf %s \"$1\"' ngfleet 'a b'")
        );
        assert_eq!(
            sudo.render(&Privilege::AsLoginUser).as_deref(),
            Ok("sh -c 'printf %s \"$1\"' ngfleet 'a b'")
        );
    }

    #[test]
    fn rejects_nul_and_newline() {
        let cmd = RemoteCommand::script("true", ["ok", "two\nlines"]);
        assert_eq!(
            cmd.render(&Privilege::AsLoginUser),
            Err(ArgumentError {
                index: 2,
                problem: ArgumentProblem::Newline
            })
        );
        let cmd = RemoteCommand::script("true", ["nul\0byte"]);
        assert_eq!(
            cmd.render(&Privilege::AsLoginUser),
            Err(ArgumentError {
                index: 1,
                problem: ArgumentProblem::Nul
            })
        );
        assert_eq!(
            RemoteCommand::script("true\0", Vec::<String>::new()).render(&Privilege::AsLoginUser),
            Err(ArgumentError {
                index: 0,
                problem: ArgumentProblem::Nul
            })
        );
    }

    /// Runs the rendered line through a real local `sh -c`, like sshd does,
    /// and checks every argument arrives verbatim and alone.
    #[test]
    fn nasty_arguments_arrive_verbatim_through_sh() {
        for arg in NASTY {
            let cmd = RemoteCommand::script("printf '%s|%s' \"$#\" \"$1\"", [*arg]);
            let line = cmd.render(&Privilege::AsLoginUser).expect("renders");
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&line)
                .output()
                .expect("sh runs");
            assert!(out.status.success(), "{line}");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("1|{arg}"),
                "{line}"
            );
        }
    }

    #[test]
    fn default_label_is_first_script_line() {
        let cmd = RemoteCommand::script("\n  nginx -t\n  nginx -s reload\n", Vec::<String>::new());
        assert_eq!(cmd.label(), "nginx -t");
        assert_eq!(cmd.labelled("test config").label(), "test config");
        let long = RemoteCommand::script(
            "echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            Vec::<String>::new(),
        );
        assert_eq!(long.label().len(), LABEL_MAX + 3);
    }

    #[test]
    fn recognises_sudo_refusals() {
        let pw = b"sudo: a password is required\n";
        assert_eq!(
            sudo_refusal(&ExitStatus::Code(1), pw).as_deref(),
            Some("a password is required")
        );
        let sudoers = b"deploy is not in the sudoers file.  This incident will be reported.\nsudo: deploy is not in the sudoers file.\n";
        assert!(sudo_refusal(&ExitStatus::Code(1), sudoers).is_some());
        assert_eq!(
            sudo_refusal(&ExitStatus::Code(127), b"sh: 1: sudo: not found\n").as_deref(),
            Some("sudo is not installed")
        );
        // The script's own failure is not a sudo refusal.
        assert_eq!(
            sudo_refusal(&ExitStatus::Code(1), b"nginx: config test failed\n"),
            None
        );
        assert_eq!(sudo_refusal(&ExitStatus::Code(2), pw), None);
    }
}
