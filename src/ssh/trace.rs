//! `-v`: every connection and remote command, as it ends, on stderr: the host, the command's
//! label, how it ended and how long it took; `-vv` adds the first lines of its output. One
//! write per command, so the lines of hosts running at once do not mix.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use super::error::SshError;
use super::session::ExecOutput;

/// How much the transport reports on stderr (`-v`, `-vv`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Nothing.
    #[default]
    Off,
    /// Each connection and command: host, label, exit status, time.
    Commands,
    /// Also the first lines of each command's output.
    Output,
}

impl Verbosity {
    /// The level for `-v` given `count` times.
    pub fn from_count(count: u8) -> Verbosity {
        match count {
            0 => Verbosity::Off,
            1 => Verbosity::Commands,
            _ => Verbosity::Output,
        }
    }
}

/// Lines of stdout, and of stderr, shown per command at `-vv`.
const OUTPUT_LINES: usize = 6;
/// Characters shown of one output line.
const LINE_CHARS: usize = 160;

/// How a command ended, as far as the trace tells.
pub(super) enum Ending<'a> {
    Ran(&'a ExecOutput),
    /// A held command (the lock) that is now running in the background, with what it printed
    /// before its ready line.
    Holding(&'a [u8]),
    Failed(&'a SshError),
}

/// The trace of one command: `HOST: $ LABEL: exit code 0 in 35ms`, then at
/// [`Verbosity::Output`] its first lines of stdout (`|`) and stderr (`!`).
pub(super) fn command_text(
    host: &str,
    label: &str,
    elapsed: Duration,
    ending: Ending<'_>,
    verbosity: Verbosity,
) -> String {
    let time = millis(elapsed);
    let mut text = match &ending {
        Ending::Ran(out) => format!("{host}: $ {label}: {} in {time}\n", out.status),
        Ending::Holding(_) => format!("{host}: $ {label}: running (held) after {time}\n"),
        Ending::Failed(e) => format!("{host}: $ {label}: failed after {time}: {}\n", cause(e)),
    };
    match (&ending, verbosity) {
        (Ending::Ran(out), Verbosity::Output) => {
            excerpt(&mut text, host, '|', &out.stdout_lossy());
            excerpt(&mut text, host, '!', &out.stderr_lossy());
        }
        (Ending::Holding(said), Verbosity::Output) => {
            excerpt(&mut text, host, '|', &String::from_utf8_lossy(said));
        }
        _ => {}
    }
    text
}

/// The trace of a connection: `HOST: connected in 54ms` or why not.
pub(super) fn connect_text(host: &str, elapsed: Duration, result: Result<(), &SshError>) -> String {
    let time = millis(elapsed);
    match result {
        Ok(()) => format!("{host}: connected in {time}\n"),
        Err(e) => format!("{host}: connect failed after {time}: {}\n", cause(e)),
    }
}

/// Writes a trace in one piece.
pub(super) fn emit(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// An error without the host name it starts with (the trace line already has it).
fn cause(e: &SshError) -> String {
    let text = e.to_string();
    let mut rest = text.strip_prefix(e.host()).unwrap_or(&text);
    if let Some(endpoint) = e.endpoint() {
        rest = rest.strip_prefix(&format!(" ({endpoint})")).unwrap_or(rest);
    }
    let mut chain = rest.strip_prefix(": ").unwrap_or(rest).to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let _ = write!(chain, ": {s}");
        source = s.source();
    }
    chain
}

fn excerpt(text: &mut String, host: &str, mark: char, output: &str) {
    let lines: Vec<&str> = output.lines().collect();
    for line in lines.iter().take(OUTPUT_LINES) {
        let shown: String = line.chars().take(LINE_CHARS).collect();
        let cut = if shown.len() < line.len() { " …" } else { "" };
        let _ = writeln!(text, "{host}:   {mark} {shown}{cut}");
    }
    if lines.len() > OUTPUT_LINES {
        let _ = writeln!(
            text,
            "{host}:   {mark} … {} more lines",
            lines.len() - OUTPUT_LINES
        );
    }
}

fn millis(elapsed: Duration) -> String {
    format!("{}ms", elapsed.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::session::ExitStatus;
    use crate::ssh::{SshErrorKind, Step};

    fn output(stdout: &str, stderr: &str) -> ExecOutput {
        ExecOutput {
            status: ExitStatus::Code(3),
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    #[test]
    fn counts_map_to_levels() {
        assert_eq!(Verbosity::from_count(0), Verbosity::Off);
        assert_eq!(Verbosity::from_count(1), Verbosity::Commands);
        assert_eq!(Verbosity::from_count(4), Verbosity::Output);
    }

    #[test]
    fn a_command_is_its_label_status_and_time() {
        let out = output("a\nb\n", "oops\n");
        let ms = Duration::from_millis(35);
        assert_eq!(
            command_text(
                "web-01",
                "probe",
                ms,
                Ending::Ran(&out),
                Verbosity::Commands
            ),
            "web-01: $ probe: exit code 3 in 35ms\n"
        );
        assert_eq!(
            command_text("web-01", "probe", ms, Ending::Ran(&out), Verbosity::Output),
            "web-01: $ probe: exit code 3 in 35ms\nweb-01:   | a\nweb-01:   | b\nweb-01:   ! oops\n"
        );
        assert_eq!(
            command_text(
                "web-01",
                "lock",
                ms,
                Ending::Holding(b""),
                Verbosity::Output
            ),
            "web-01: $ lock: running (held) after 35ms\n"
        );
        assert_eq!(
            command_text(
                "web-01",
                "lock",
                ms,
                Ending::Holding(b"probe 1\nend ok\n"),
                Verbosity::Output
            ),
            "web-01: $ lock: running (held) after 35ms\nweb-01:   | probe 1\nweb-01:   | end ok\n"
        );
        assert_eq!(
            command_text(
                "web-01",
                "lock",
                ms,
                Ending::Holding(b"probe 1\n"),
                Verbosity::Commands
            ),
            "web-01: $ lock: running (held) after 35ms\n"
        );
        let e = SshError::new(
            "web-01",
            Step::Exec("probe".into()),
            SshErrorKind::Disconnected,
        );
        assert_eq!(
            command_text(
                "web-01",
                "probe",
                ms,
                Ending::Failed(&e),
                Verbosity::Commands
            ),
            "web-01: $ probe: failed after 35ms: connection lost\n"
        );
    }

    #[test]
    fn output_is_bounded() {
        let long: String = "x".repeat(500);
        let many: String = (0..20).map(|i| format!("{i}\n")).collect();
        let out = output(&format!("{long}\n{many}"), "");
        let text = command_text(
            "h",
            "l",
            Duration::ZERO,
            Ending::Ran(&out),
            Verbosity::Output,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + OUTPUT_LINES + 1, "{text}");
        assert!(
            lines[1].ends_with(" …") && lines[1].len() < 200,
            "{}",
            lines[1]
        );
        assert_eq!(lines[OUTPUT_LINES + 1], "h:   | … 15 more lines");
    }

    #[test]
    fn a_connection_says_how_long_it_took() {
        assert_eq!(
            connect_text("web-01", Duration::from_millis(54), Ok(())),
            "web-01: connected in 54ms\n"
        );
    }
}
