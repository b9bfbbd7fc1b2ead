//! The probe: one remote shell script that reports everything about a host's nginx in one
//! round trip, and the pure parser of its output into an [`Observation`].
//!
//! The script is fixed text from this file; the pid file and binary paths reach it as quoted
//! positional arguments, never as code. It reads `/proc` (Linux), so it runs privileged.

use std::fmt;

use super::record::Record;

/// The probe script. Arguments: `$1` pid file, `$2` nginx binary on disk, `$3` the
/// [`Depth`]'s word. Output: one `key value` pair per line. A master's argv is `title` (nginx's
/// own process title, as text) or `cmdline` (hex of the NUL-separated argv, so arguments with
/// spaces survive).
pub const PROBE_SCRIPT: &str = concat!(include_str!("scripts/procfs.sh"), include_str!("probe.sh"));

/// How much the probe looks at. What a depth leaves out is absent from the observation (not
/// a default value): `None`, or no line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Everything, checksums and versions included (`status`, the last look at a failed host).
    Full,
    /// Checksums, orphaned workers and what preflight reads (the binary's size, free space);
    /// no `-v` runs: an observation the upgrade decides from.
    Sums,
    /// As [`Depth::Sums`] less what only preflight reads: the probe that ends a step command.
    Step,
    /// Pid files, processes and files only: for polling while a step waits.
    Quick,
}

impl Depth {
    /// The probe's `$3`, and its `depth` line.
    pub fn word(self) -> &'static str {
        match self {
            Depth::Full => "full",
            Depth::Sums => "sums",
            Depth::Step => "step",
            Depth::Quick => "quick",
        }
    }

    fn from_word(word: &str) -> Option<Depth> {
        [Depth::Full, Depth::Sums, Depth::Step, Depth::Quick]
            .into_iter()
            .find(|d| d.word() == word)
    }

    /// Whether the probe at this depth reports what preflight reads (the binary's size and
    /// the free space beside it).
    pub fn has_preflight_facts(self) -> bool {
        matches!(self, Depth::Full | Depth::Sums)
    }
}

/// A process state letter from `/proc/PID/stat`, or gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcState {
    /// Running, sleeping, disk wait, stopped…: alive.
    Alive(char),
    /// `Z`: exited but not reaped. `kill -0` still succeeds on it; it is not alive.
    Zombie,
    /// No such process.
    Gone,
}

impl ProcState {
    pub fn is_alive(self) -> bool {
        matches!(self, ProcState::Alive(_))
    }
}

impl fmt::Display for ProcState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcState::Alive(c) => write!(f, "{c}"),
            ProcState::Zombie => f.write_str("Z"),
            ProcState::Gone => f.write_str("gone"),
        }
    }
}

/// A child process of a master.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Child {
    pub pid: u32,
    pub state: ProcState,
    /// The process title, e.g. `nginx: worker process`.
    pub title: String,
}

impl Child {
    pub fn is_worker(&self) -> bool {
        self.state.is_alive() && self.title.contains("worker process")
    }
}

/// An nginx master process as the probe saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Master {
    pub pid: u32,
    pub state: ProcState,
    pub ppid: Option<u32>,
    pub argv: Vec<String>,
    /// Whether the process calls itself an nginx master (`nginx: master process …`).
    pub nginx_master: bool,
    /// `/proc/PID/exe` as read by readlink; ends in ` (deleted)` after the file was replaced.
    /// A master whose executable is the binary's file (the same inode) gets that file's path
    /// without a readlink: the two differ only for a master started through another hard
    /// link, and this path only helps split argv[0] out of the title.
    pub exe: String,
    pub exe_sha256: Option<String>,
    /// `nginx/1.22.1`, from running the master's own executable with `-v`.
    pub version: Option<String>,
    pub children: Vec<Child>,
}

impl Master {
    pub fn workers(&self) -> usize {
        self.children.iter().filter(|c| c.is_worker()).count()
    }

    /// Whether argv[0] is an absolute path (USR2 re-executes argv[0] without a PATH search).
    pub fn argv0_is_absolute(&self) -> bool {
        self.argv.first().is_some_and(|a| a.starts_with('/'))
    }

    /// The binary the master was started from (argv[0]).
    pub fn binary(&self) -> Option<&str> {
        self.argv.first().map(String::as_str)
    }
}

/// The nginx binary on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskBinary {
    pub sha256: Option<String>,
    pub version: Option<String>,
    pub size: Option<u64>,
}

/// The systemd unit that owns the master, when systemd runs the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unit {
    pub name: String,
    /// `Type=` (`forking`, `simple`, `notify`…).
    pub kind: String,
    /// `PIDFile=`, resolved.
    pub pid_file: String,
    /// The inventory's pid file, resolved the same way.
    pub our_pid_file: String,
}

/// A backup of an earlier binary (found by name; nothing reads its times).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backup {
    pub path: String,
}

/// Everything one probe saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observation {
    /// How much the probe looked at (`None`: a probe output without the line).
    pub depth: Option<Depth>,
    /// The kernel's machine name, as `uname -m` says it (read from `/proc/sys/kernel/arch` on
    /// Linux 6.1 and later when the probe's shell has no personality; under one, such as an
    /// i686 container on an x86_64 kernel, only `uname` says what the host runs).
    pub machine: String,
    /// The pid named by the pid file, if it names one.
    pub pid_file: Option<u32>,
    /// The pid named by `<pid file>.oldbin`, if present.
    pub oldbin: Option<u32>,
    pub master: Option<Master>,
    pub old_master: Option<Master>,
    /// `None` when the binary path does not exist.
    pub binary: Option<DiskBinary>,
    /// Temp files a controller staged beside the binary (`.nginx.ngfleet-stage.*`).
    pub staged: Vec<String>,
    /// Backups of earlier binaries (`nginx.ngfleet-backup.<sha256 prefix>`), by name.
    pub backups: Vec<Backup>,
    /// Free space in the binary's directory, in KiB (full and sums probes only).
    pub free_kb: Option<u64>,
    /// The systemd unit of the master named by the pid file.
    pub unit: Option<Unit>,
    /// ngfleet's state record beside the binary.
    pub record: RecordSeen,
    /// The file `nginx_binary` resolves to, when it is a symlink.
    pub binary_file: Option<String>,
    /// Workers of this binary whose master is gone (re-parented to PID 1): they still accept
    /// on the shared sockets. Full probes only.
    pub orphans: Vec<u32>,
}

/// The state record as the probe found it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RecordSeen {
    /// No record beside the binary.
    #[default]
    Missing,
    Read(Record),
    /// A record that could not be parsed: why.
    Unreadable(String),
}

impl RecordSeen {
    pub fn record(&self) -> Option<&Record> {
        match self {
            RecordSeen::Read(r) => Some(r),
            _ => None,
        }
    }
}

/// Why probe output could not be understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ObserveError {
    #[error("probe output is incomplete (no end marker)")]
    Truncated,
    #[error("probe output line {line} is malformed: {text:?}")]
    Malformed { line: usize, text: String },
    #[error("probe output is from an unknown probe version")]
    Version,
}

/// Parses the probe's standard output.
pub fn parse(stdout: &str) -> Result<Observation, ObserveError> {
    let mut obs = Observation::default();
    let mut complete = false;
    let mut versioned = false;
    let mut disk = DiskBinary {
        sha256: None,
        version: None,
        size: None,
    };
    let mut disk_present = true;
    let mut record_lines: Vec<&str> = Vec::new();
    for (i, line) in stdout.lines().enumerate() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        let malformed = || ObserveError::Malformed {
            line: i + 1,
            text: line.to_owned(),
        };
        match key {
            "probe" => versioned = value == "1",
            "depth" => obs.depth = Some(Depth::from_word(value).ok_or_else(malformed)?),
            "machine" => obs.machine = value.to_owned(),
            "pidfile" => {
                obs.pid_file = pid_or_none(value).map_err(|_| malformed())?;
                obs.master = obs.pid_file.map(new_master);
            }
            "oldbin" => {
                obs.oldbin = pid_or_none(value).map_err(|_| malformed())?;
                obs.old_master = obs.oldbin.map(new_master);
            }
            "bin.sha256" => disk.sha256 = non_empty(value),
            "bin.version" => disk.version = version(value),
            "bin.missing" => disk_present = false,
            "bin.size" => disk.size = value.parse().ok(),
            "stage" => obs.staged.push(value.to_owned()),
            "backup" => obs.backups.push(Backup {
                path: non_empty(value).ok_or_else(malformed)?,
            }),
            "free_kb" => obs.free_kb = value.parse().ok(),
            "record" => record_lines.push(value),
            "bin.file" => obs.binary_file = Some(value.to_owned()),
            "orphan" => obs.orphans.push(value.parse().map_err(|_| malformed())?),
            "unit.name" => {
                obs.unit = Some(Unit {
                    name: value.to_owned(),
                    ..Unit::default()
                })
            }
            "unit.type" | "unit.pidfile" | "unit.ours" => {
                let unit = obs.unit.as_mut().ok_or_else(malformed)?;
                match key {
                    "unit.type" => unit.kind = value.to_owned(),
                    "unit.pidfile" => unit.pid_file = value.to_owned(),
                    _ => unit.our_pid_file = value.to_owned(),
                }
            }
            "end" => complete = true,
            _ => {
                let (tag, field) = key.split_once('.').ok_or_else(malformed)?;
                let master = match tag {
                    "master" => obs.master.as_mut(),
                    "oldmaster" => obs.old_master.as_mut(),
                    _ => None,
                }
                .ok_or_else(malformed)?;
                master_field(master, field, value).ok_or_else(malformed)?;
            }
        }
    }
    if !versioned {
        return Err(ObserveError::Version);
    }
    if !complete {
        return Err(ObserveError::Truncated);
    }
    obs.binary = disk_present.then_some(disk);
    if !record_lines.is_empty() {
        obs.record = match Record::parse(record_lines) {
            Ok(r) => RecordSeen::Read(r),
            Err(e) => RecordSeen::Unreadable(e.to_string()),
        };
    }
    Ok(obs)
}

fn new_master(pid: u32) -> Master {
    Master {
        pid,
        state: ProcState::Gone,
        ppid: None,
        argv: Vec::new(),
        nginx_master: false,
        exe: String::new(),
        exe_sha256: None,
        version: None,
        children: Vec::new(),
    }
}

fn pid_or_none(value: &str) -> Result<Option<u32>, std::num::ParseIntError> {
    if value == "none" {
        Ok(None)
    } else {
        value.parse().map(Some)
    }
}

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

/// `nginx version: nginx/1.22.1` -> `nginx/1.22.1`.
fn version(value: &str) -> Option<String> {
    let v = value
        .strip_prefix("nginx version: ")
        .unwrap_or(value)
        .trim();
    (!v.is_empty()).then(|| v.to_owned())
}

fn state(value: &str) -> Option<ProcState> {
    match value {
        "gone" => Some(ProcState::Gone),
        "Z" | "X" | "x" => Some(ProcState::Zombie),
        other => {
            let mut chars = other.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some(ProcState::Alive(c)),
                _ => None,
            }
        }
    }
}

fn master_field(m: &mut Master, field: &str, value: &str) -> Option<()> {
    match field {
        "state" => m.state = state(value)?,
        "ppid" => m.ppid = Some(value.parse().ok()?),
        "cmdline" => m.argv = decode_argv(value)?,
        // nginx's title, read as text by the probe (it holds no NUL): one argument, split back
        // once the executable's path is known.
        "title" => m.argv = vec![value.to_owned()],
        "exe" if !m.argv.is_empty() => {
            m.exe = value.to_owned();
            m.nginx_master = m
                .argv
                .first()
                .is_some_and(|a| a.starts_with("nginx: master process "));
            m.argv = untitle(&m.argv, &m.exe);
        }
        "exe" => m.exe = value.to_owned(),
        "sha256" => m.exe_sha256 = non_empty(value),
        "version" => m.version = version(value),
        "child" => {
            let mut parts = value.splitn(3, ' ');
            let pid = parts.next()?.parse().ok()?;
            let st = state(parts.next()?)?;
            let title = parts.next().unwrap_or("").trim_end().to_owned();
            m.children.push(Child {
                pid,
                state: st,
                title,
            });
        }
        _ => return None,
    }
    Some(())
}

/// nginx rewrites its master's argv into one title, `nginx: master process ARGV0 ARGS… `.
/// This splits it back: argv[0] is recognised by the executable's path (so a path with
/// spaces survives); the remaining arguments are split on spaces (nginx joined them with
/// spaces, so an argument that itself contains a space cannot be told apart).
fn untitle(argv: &[String], exe: &str) -> Vec<String> {
    let [title] = argv else {
        return argv.to_vec();
    };
    let Some(rest) = title.strip_prefix("nginx: master process ") else {
        return argv.to_vec();
    };
    let rest = rest.trim_end();
    let exe = exe.strip_suffix(" (deleted)").unwrap_or(exe);
    let (argv0, tail) = match rest.strip_prefix(exe) {
        Some(tail) if tail.is_empty() || tail.starts_with(' ') => (exe.to_owned(), tail),
        _ => match rest.split_once(' ') {
            Some((a, t)) => (a.to_owned(), t),
            None => (rest.to_owned(), ""),
        },
    };
    let mut argv = vec![argv0];
    let mut words = tail.split_whitespace().peekable();
    while let Some(word) = words.next() {
        argv.push(word.to_owned());
        if word == "-g" {
            // `-g` takes directives that contain spaces (`daemon on; master_process on;`):
            // everything up to the next nginx option belongs to it.
            let mut value = Vec::new();
            while let Some(next) = words.peek() {
                if NGINX_FLAGS.contains(next) {
                    break;
                }
                value.push(*next);
                words.next();
            }
            argv.push(value.join(" "));
        }
    }
    argv
}

/// nginx's command-line options (for splitting a process title back into arguments).
const NGINX_FLAGS: &[&str] = &[
    "-?", "-h", "-v", "-V", "-t", "-T", "-q", "-s", "-p", "-e", "-c", "-g",
];

/// Hex of a NUL-separated argv back into arguments.
fn decode_argv(hex: &str) -> Option<Vec<String>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    let bytes = bytes?;
    let trimmed = bytes.strip_suffix(&[0]).unwrap_or(&bytes);
    if trimmed.is_empty() {
        return Some(Vec::new());
    }
    Some(
        trimmed
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn hex(args: &[&str]) -> String {
        args.iter()
            .flat_map(|a| a.bytes().chain(std::iter::once(0)))
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A steady host: one master with one worker.
    pub(crate) fn steady_output() -> String {
        format!(
            "probe 1\nmachine x86_64\npidfile 4711\nmaster.state S\nmaster.ppid 1\nmaster.cmdline {}\n\
master.exe /srv/lab/sbin/nginx\nmaster.sha256 aaaa\nmaster.version nginx version: nginx/1.22.1\n\
master.child 4712 S nginx: worker process \noldbin none\nbin.sha256 aaaa\nbin.version nginx version: nginx/1.22.1\nend ok\n",
            hex(&[
                "/srv/lab/sbin/nginx",
                "-p",
                "/srv/my prefix",
                "-c",
                "conf/nginx.conf"
            ])
        )
    }

    #[test]
    fn parses_a_steady_host() {
        let obs = parse(&steady_output()).expect("parses");
        assert_eq!(obs.machine, "x86_64");
        assert_eq!(obs.pid_file, Some(4711));
        let m = obs.master.expect("master");
        assert_eq!(m.state, ProcState::Alive('S'));
        assert_eq!(m.ppid, Some(1));
        assert_eq!(
            m.argv,
            [
                "/srv/lab/sbin/nginx",
                "-p",
                "/srv/my prefix",
                "-c",
                "conf/nginx.conf"
            ]
        );
        assert!(m.argv0_is_absolute());
        assert_eq!(m.version.as_deref(), Some("nginx/1.22.1"));
        assert_eq!(m.workers(), 1);
        assert_eq!(m.children[0].title, "nginx: worker process");
        assert_eq!(obs.old_master, None);
        let bin = obs.binary.expect("binary");
        assert_eq!(bin.sha256.as_deref(), Some("aaaa"));
    }

    #[test]
    fn zombies_and_missing_processes_are_not_alive() {
        let out = "probe 1\nmachine x86_64\npidfile 10\nmaster.state Z\nmaster.ppid 1\n\
master.child 11 Z \noldbin 9\noldmaster.state gone\nbin.missing yes\nend ok\n";
        let obs = parse(out).expect("parses");
        let m = obs.master.expect("master");
        assert_eq!(m.state, ProcState::Zombie);
        assert!(!m.state.is_alive());
        assert_eq!(m.workers(), 0);
        assert_eq!(obs.old_master.map(|o| o.state), Some(ProcState::Gone));
        assert_eq!(obs.binary, None);
    }

    #[test]
    fn nginx_process_titles_are_split_back_into_argv() {
        let out = format!(
            "probe 1\nmachine x86_64\npidfile 10\nmaster.state S\nmaster.cmdline {}\n\
master.exe /opt/my nginx/sbin/nginx (deleted)\noldbin none\nbin.missing yes\nend ok\n",
            hex(&["nginx: master process /opt/my nginx/sbin/nginx -p /srv/p -c conf/nginx.conf "])
        );
        let m = parse(&out).expect("parses").master.expect("master");
        assert_eq!(
            m.argv,
            [
                "/opt/my nginx/sbin/nginx",
                "-p",
                "/srv/p",
                "-c",
                "conf/nginx.conf"
            ]
        );
        let titled = format!(
            "probe 1\nmachine x86_64\npidfile 10\nmaster.state S\nmaster.cmdline {}\n\
master.exe /usr/sbin/nginx\noldbin none\nbin.missing yes\nend ok\n",
            hex(&["nginx: master process nginx -g daemon on;"])
        );
        let m = parse(&titled).expect("parses").master.expect("master");
        assert_eq!(m.binary(), Some("nginx"));
        assert_eq!(m.argv, ["nginx", "-g", "daemon on;"]);
        assert!(!m.argv0_is_absolute());
        let debian = format!(
            "probe 1\nmachine x86_64\npidfile 10\nmaster.state S\nmaster.cmdline {}\n\
master.exe /usr/sbin/nginx\noldbin none\nbin.missing yes\nend ok\n",
            hex(&[
                "nginx: master process /usr/sbin/nginx -g daemon on; master_process on; -c /etc/nginx/nginx.conf"
            ])
        );
        let m = parse(&debian).expect("parses").master.expect("master");
        assert_eq!(
            m.argv,
            [
                "/usr/sbin/nginx",
                "-g",
                "daemon on; master_process on;",
                "-c",
                "/etc/nginx/nginx.conf"
            ]
        );
    }

    #[test]
    fn staged_files_and_backups() {
        let out = "probe 1\ndepth sums\nmachine x86_64\npidfile none\noldbin none\nbin.missing yes\n\
stage /s/.nginx.ngfleet-stage.1\nbackup /s/nginx.ngfleet-backup.aa\nbackup /s/my dir/nginx.ngfleet-backup.bb\n\
free_kb 1234\nend ok\n";
        let obs = parse(out).expect("parses");
        assert_eq!(obs.depth, Some(Depth::Sums));
        assert_eq!(obs.staged, ["/s/.nginx.ngfleet-stage.1"]);
        let paths: Vec<&str> = obs.backups.iter().map(|b| b.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/s/nginx.ngfleet-backup.aa",
                "/s/my dir/nginx.ngfleet-backup.bb"
            ]
        );
        assert_eq!(obs.free_kb, Some(1234));
        assert!(matches!(
            parse("probe 1\nbackup \nend ok\n"),
            Err(ObserveError::Malformed { line: 2, .. })
        ));
    }

    #[test]
    fn a_step_probe_leaves_out_what_only_preflight_reads() {
        let out = "probe 1\ndepth step\nmachine x86_64\npidfile none\noldbin none\nbin.sha256 aaaa\nend ok\n";
        let obs = parse(out).expect("parses");
        assert_eq!(obs.depth, Some(Depth::Step));
        assert!(!Depth::Step.has_preflight_facts());
        assert!(Depth::Sums.has_preflight_facts() && Depth::Full.has_preflight_facts());
        assert!(!Depth::Quick.has_preflight_facts());
        // Not observed, not zero.
        assert_eq!(obs.free_kb, None);
        assert_eq!(obs.binary.expect("binary").size, None);
        for depth in [Depth::Full, Depth::Sums, Depth::Step, Depth::Quick] {
            assert_eq!(Depth::from_word(depth.word()), Some(depth));
        }
        assert!(matches!(
            parse("probe 1\ndepth deep\nend ok\n"),
            Err(ObserveError::Malformed { line: 2, .. })
        ));
    }

    #[test]
    fn a_title_sent_as_text_is_split_as_the_hex_one() {
        let title = "nginx: master process /opt/my nginx/sbin/nginx -g daemon on; master_process on; -p /srv/p";
        let as_text = format!(
            "probe 1\nmachine x86_64\npidfile 10\nmaster.state S\nmaster.title {title}\n\
master.exe /opt/my nginx/sbin/nginx\noldbin none\nbin.missing yes\nend ok\n"
        );
        let as_hex = as_text.replace(
            &format!("master.title {title}"),
            &format!("master.cmdline {}", hex(&[title])),
        );
        let m = parse(&as_text).expect("parses").master.expect("master");
        assert_eq!(
            Some(m.clone()),
            parse(&as_hex).expect("parses").master,
            "text and hex give the same master"
        );
        assert!(m.nginx_master);
        assert_eq!(
            m.argv,
            [
                "/opt/my nginx/sbin/nginx",
                "-g",
                "daemon on; master_process on;",
                "-p",
                "/srv/p"
            ]
        );
    }

    #[test]
    fn relative_argv0_is_seen() {
        let out = format!(
            "probe 1\nmachine x86_64\npidfile 10\nmaster.state S\nmaster.cmdline {}\noldbin none\nbin.missing yes\nend ok\n",
            hex(&["nginx", "-g", "daemon on;"])
        );
        let m = parse(&out).expect("parses").master.expect("master");
        assert!(!m.argv0_is_absolute());
        assert_eq!(m.argv, ["nginx", "-g", "daemon on;"]);
    }

    #[test]
    fn truncated_or_garbled_output_is_an_error() {
        let full = steady_output();
        let cut = &full[..full.find("end ok").expect("end")];
        assert_eq!(parse(cut), Err(ObserveError::Truncated));
        assert_eq!(
            parse("hello\n"),
            Err(ObserveError::Malformed {
                line: 1,
                text: "hello".into()
            })
        );
        assert_eq!(parse("machine x\nend ok\n"), Err(ObserveError::Version));
        assert_eq!(
            parse("probe 1\npidfile abc\nend ok\n"),
            Err(ObserveError::Malformed {
                line: 2,
                text: "pidfile abc".into()
            })
        );
        assert!(matches!(
            parse("probe 1\nmaster.state S\nend ok\n"),
            Err(ObserveError::Malformed { line: 2, .. })
        ));
    }
}
