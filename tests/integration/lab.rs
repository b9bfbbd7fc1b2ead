//! The lab as the tests see it: `scripts/lab up` in a directory of its own, torn down on drop.
//! Every lab test gets its own id, so labs run side by side without touching each other.
//!
//! A lab test starts with `let lab = lab!(N);` (or `debian_lab!(N)` for hosts that are real
//! Debian 12 systems booted with systemd, [`Kind::Debian`]). A lab that cannot come up fails
//! the test with the reason; no lab test passes without its lab. The one exception is an explicit
//! `NGFLEET_SKIP_LAB_TESTS=1` in the environment: then every lab test prints
//! "skipped: NGFLEET_SKIP_LAB_TESTS" and returns. CI never sets it.

/// `lab!(n)`: brings up `n` lab hosts ([`Lab::up`]), or returns from the test (sync or async)
/// when `NGFLEET_SKIP_LAB_TESTS=1` says to skip lab tests.
macro_rules! lab {
    ($n:expr) => {
        match $crate::lab::Lab::up($n) {
            Some(lab) => lab,
            None => return,
        }
    };
}

/// `debian_lab!(n)`: brings up `n` Debian hosts with systemd as PID 1 ([`Kind::Debian`]), or
/// returns from the test when `NGFLEET_SKIP_LAB_TESTS=1` says to skip lab tests.
macro_rules! debian_lab {
    ($n:expr) => {
        match $crate::lab::Lab::up_kind($n, $crate::lab::Kind::Debian) {
            Some(lab) => lab,
            None => return,
        }
    };
}

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::harness::repo;

/// The variable that skips lab tests (set to `1`); CI never sets it.
pub const SKIP: &str = "NGFLEET_SKIP_LAB_TESTS";

/// Lab ids in use by this test process (the lab script allows 0..=40; 0 is the demo's and 39
/// the benchmark's, so tests take 1..=38 and give them back on drop).
static IDS: Mutex<[bool; 39]> = Mutex::new([false; 39]);

/// Takes a free id, starting the search at `from`: free in this process and, as far as this
/// machine shows, not used by a lab of another process (another worktree's tests, the demo):
/// bridge `ngfbr<id>` absent, or recorded as this process's own directory for that id (a
/// leftover of an earlier run, which `scripts/lab up` tears down).
fn take_id(from: u32) -> u32 {
    loop {
        if let Ok(mut ids) = IDS.lock()
            && let Some(free) = (0..38)
                .map(|k| 1 + (from.saturating_sub(1) + k) % 38)
                .find(|&i| !ids[i as usize] && !foreign_bridge(i))
        {
            ids[free as usize] = true;
            return free;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn lab_dir(id: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("lab-{id}"))
}

/// Whether bridge `ngfbr<id>` exists and belongs to a lab in another directory.
fn foreign_bridge(id: u32) -> bool {
    match fs::read_to_string(format!("/sys/class/net/ngfbr{id}/ifalias")) {
        Ok(alias) => alias.trim() != format!("ngfleet-lab:{}", lab_dir(id).display()),
        Err(_) => false,
    }
}

fn give_back(id: u32) {
    if let Ok(mut ids) = IDS.lock() {
        ids[id as usize] = false;
    }
}

/// What the lab's hosts are (`scripts/lab up --kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// sshd and a copy of nginx started by the lab, each host in a network namespace.
    Regular,
    /// A real Debian 12 booted with systemd as PID 1 (systemd-nspawn) in the host's network
    /// namespace: Debian's nginx under `nginx.service` (`nginx_binary` `/usr/sbin/nginx`,
    /// `nginx_pid_file` `/run/nginx.pid`, both inside the container), reached as `deploy`
    /// with `ansible_become: true`. Its root is debootstrapped once and cached under
    /// `target/lab-cache/`.
    Debian,
    /// [`Kind::Debian`] with the containers' systemd on the legacy cgroup v1 layout (`--cgroup
    /// v1`): `/proc/PID/cgroup` names the unit only on its `name=systemd` line.
    DebianCgroupV1,
}

impl Kind {
    /// Its options of `scripts/lab up`.
    fn args(self) -> &'static [&'static str] {
        match self {
            Kind::Regular => &["--kind", "regular"],
            Kind::Debian => &["--kind", "debian"],
            Kind::DebianCgroupV1 => &["--kind", "debian", "--cgroup", "v1"],
        }
    }
}

/// One lab host, from `hosts.tsv`.
#[derive(Clone, Debug)]
pub struct LabHost {
    pub name: String,
    pub address: String,
    pub ssh_port: u16,
    pub http_port: u16,
    pub dir: PathBuf,
}

impl LabHost {
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("nginx/logs/nginx.pid")
    }

    /// The pid in the pid file, if it is there (it is briefly absent during USR2).
    pub fn master_pid(&self) -> Option<u32> {
        fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The host's nginx binary (`nginx_binary` in the inventory).
    pub fn binary(&self) -> PathBuf {
        self.dir.join("sbin/nginx")
    }

    /// `address:port` of the host's nginx, from this machine.
    pub fn http(&self) -> String {
        format!("{}:{}", self.address, self.http_port)
    }

    /// The live nginx masters of this host, read from /proc on this machine (lab hosts share
    /// its pid namespace): processes titled `nginx: master process` whose title names the
    /// host's directory, zombies excluded. Sorted.
    pub fn masters(&self) -> Vec<u32> {
        let mine = format!("{}/", self.dir.display());
        let mut pids: Vec<u32> = fs::read_dir("/proc")
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                    .collect()
            })
            .unwrap_or_default();
        pids.retain(|&pid| {
            let title = fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            title.starts_with("nginx: master process") && title.contains(&mine) && alive(pid)
        });
        pids.sort_unstable();
        pids
    }
}

/// Polls `cond` every 50 ms for at most `limit`; whether it came true.
pub fn wait_until(limit: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let started = std::time::Instant::now();
    loop {
        if cond() {
            return true;
        }
        if started.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A process counts as gone when it is absent or a zombie.
pub fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit(") ").next().unwrap_or("").starts_with('Z'))
        .unwrap_or(false)
}

pub struct Lab {
    pub dir: PathBuf,
    pub hosts: Vec<LabHost>,
    id: u32,
}

impl Lab {
    /// Brings up `n` hosts, or panics saying why: a lab test never passes without a lab.
    /// `None` only when `NGFLEET_SKIP_LAB_TESTS=1` (after printing that the test is skipped).
    /// The machine's prerequisites are checked first (root, for network namespaces; nginx,
    /// sshd, `ip netns`). An id that another process took meanwhile is retried with the next.
    #[track_caller]
    pub fn up(n: usize) -> Option<Lab> {
        Lab::up_kind(n, Kind::Regular)
    }

    /// Brings up `n` hosts of `kind`, as [`Lab::up`] does.
    #[track_caller]
    pub fn up_kind(n: usize, kind: Kind) -> Option<Lab> {
        if std::env::var(SKIP).is_ok_and(|v| v == "1") {
            eprintln!("skipped: {SKIP}");
            return None;
        }
        if let Err(missing) = prerequisites() {
            panic!(
                "this machine cannot run a lab: {missing}. Lab tests need root (network \
                 namespaces), /usr/sbin/nginx, /usr/sbin/sshd and `ip netns` (scripts/test \
                 installs nginx, openssh-server and iproute2). They fail without a lab; set \
                 {SKIP}=1 to skip them deliberately."
            );
        }
        let mut from = 1;
        for attempt in 1..=5 {
            let id = take_id(from);
            let dir = lab_dir(id);
            let out = Command::new(repo().join("scripts/lab"))
                .args(["up", &n.to_string(), "--id", &id.to_string()])
                .args(kind.args())
                .arg("--dir")
                .arg(&dir)
                .output()
                .expect("run scripts/lab");
            if out.status.success() {
                let hosts = read_hosts(&dir);
                assert_eq!(hosts.len(), n, "hosts.tsv of the lab in {}", dir.display());
                return Some(Lab { dir, hosts, id });
            }
            let stderr = String::from_utf8_lossy(&out.stderr);
            give_back(id);
            // Another process's lab took this id between our check and `up`: try the next.
            let taken = stderr.contains("is in use")
                || stderr.contains("seems in use")
                || stderr.contains("File exists");
            assert!(
                taken && attempt < 5,
                "scripts/lab up {n} --id {id} failed (attempt {attempt}):\n{}\n{stderr}",
                String::from_utf8_lossy(&out.stdout)
            );
            from = id + 1;
        }
        unreachable!("the loop returns or panics")
    }

    /// Runs `command` inside `host` (`scripts/lab exec`): in its network namespace, or, on a
    /// [`Kind::Debian`] host, inside its container (every namespace of its systemd). Whatever
    /// the command's exit status.
    pub fn inside(&self, host: &str, command: &[&str]) -> std::process::Output {
        Command::new(repo().join("scripts/lab"))
            .arg("exec")
            .arg(host)
            .arg("--dir")
            .arg(&self.dir)
            .arg("--")
            .args(command)
            .output()
            .expect("run scripts/lab exec")
    }

    /// Partitions `host`: its link goes down, packets to and from it are dropped (no reset).
    pub fn link_down(&self, host: &str) {
        self.run(&["link-down", host]);
    }

    /// Ends the partition of `host`.
    pub fn link_up(&self, host: &str) {
        self.run(&["link-up", host]);
    }

    pub fn inventory(&self) -> String {
        self.path("inventory.yaml")
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// The version a test binary in `versions/` reports (`1.22.9`).
    pub fn version(&self, file: &str) -> String {
        let out = Command::new(self.dir.join("versions").join(file))
            .arg("-v")
            .output()
            .expect("nginx -v");
        String::from_utf8_lossy(&out.stderr)
            .trim()
            .trim_start_matches("nginx version: nginx/")
            .to_owned()
    }

    pub fn host(&self, name: &str) -> &LabHost {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .expect("lab host")
    }

    /// Runs a `scripts/lab` subcommand against this lab.
    pub fn run(&self, args: &[&str]) -> String {
        let (command, rest) = args.split_first().expect("a subcommand");
        let out = Command::new(repo().join("scripts/lab"))
            .arg(command)
            .arg("--dir")
            .arg(&self.dir)
            .args(rest)
            .output()
            .expect("run scripts/lab");
        assert!(
            out.status.success(),
            "scripts/lab {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Lab {
    /// Puts an executable `name` with `script` ahead of the real commands on `host`'s PATH
    /// for SSH sessions (a real fault or tracer on a real sshd), and restarts its sshd.
    pub fn shadow_command(&self, host: &str, name: &str, script: &str) {
        let dir = self.host(host).dir.clone();
        let bin = dir.join("shadowbin");
        fs::create_dir_all(&bin).expect("mkdir");
        fs::write(bin.join(name), script).expect("write");
        let made = Command::new("chmod").arg("+x").arg(bin.join(name)).status();
        assert!(made.is_ok_and(|s| s.success()), "chmod");
        let config = dir.join("ssh/sshd_config");
        let text = fs::read_to_string(&config).expect("sshd_config");
        if !text.contains("SetEnv PATH=") {
            let patched = text.replace(
                "SetEnv HOME=",
                &format!("SetEnv PATH={}:/usr/bin:/bin HOME=", bin.display()),
            );
            assert_ne!(patched, text, "the lab's sshd_config has a SetEnv line");
            fs::write(&config, patched).expect("write sshd_config");
        }
        self.run(&["sshd-stop", host]);
        self.run(&["sshd-start", host]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/lab"))
            .arg("down")
            .arg("--dir")
            .arg(&self.dir)
            .output();
        give_back(self.id);
    }
}

fn read_hosts(dir: &Path) -> Vec<LabHost> {
    fs::read_to_string(dir.join("hosts.tsv"))
        .expect("hosts.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            LabHost {
                name: f[0].to_owned(),
                address: f[2].to_owned(),
                ssh_port: f[3].parse().expect("port"),
                http_port: f[4].parse().expect("port"),
                dir: PathBuf::from(f[5]),
            }
        })
        .collect()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// What this machine lacks to run a lab, all of it, or nothing.
fn prerequisites() -> Result<(), String> {
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("not root (network namespaces need it)".to_owned());
    }
    for tool in ["/usr/sbin/nginx", "/usr/sbin/sshd"] {
        if !Path::new(tool).exists() {
            missing.push(format!("{tool} is missing"));
        }
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => missing.push(format!(
            "`ip netns list` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => missing.push(format!("`ip` cannot run: {e}")),
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing.join("; "))
    }
}

/// The lab's partition: a new connection to a host whose link is down stalls (a timeout, not
/// "refused" or "no route to host", even after ARP would have given up), other hosts are not
/// affected, an established connection stalls and resumes after link-up.
#[test]
fn link_down_partitions_one_host_until_link_up() {
    use std::io::{ErrorKind, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::{Duration, Instant};

    let lab = lab!(2);
    let h = lab.host("lab-01").clone();
    let web: SocketAddr = h.http().parse().expect("addr");
    let ssh: SocketAddr = format!("{}:{}", h.address, h.ssh_port)
        .parse()
        .expect("addr");
    let other: SocketAddr = format!(
        "{}:{}",
        lab.host("lab-02").address,
        lab.host("lab-02").ssh_port
    )
    .parse()
    .expect("addr");
    let request = b"GET /health HTTP/1.1\r\nHost: lab\r\n\r\n";
    let mut held = TcpStream::connect_timeout(&web, Duration::from_secs(3)).expect("connect");
    let mut buf = [0u8; 4096];
    held.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    held.write_all(request).expect("request");
    let n = held.read(&mut buf).expect("response before the partition");
    assert!(
        String::from_utf8_lossy(&buf[..n]).ends_with("ok"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );

    lab.link_down("lab-01");
    assert!(
        lab.run(&["status"])
            .lines()
            .any(|l| l.starts_with("lab-01") && l.ends_with(" down"))
    );
    // Forget what this machine learned about the host's address (pinned entries stay): were
    // the neighbour entries not pinned, ARP would give up after about 3 s and the connect
    // would fail with "no route to host" instead of stalling.
    let flushed = std::process::Command::new("ip")
        .args(["neigh", "flush", "to", &h.address])
        .status();
    assert!(flushed.is_ok_and(|s| s.success()), "ip neigh flush");
    let t = Instant::now();
    let err = TcpStream::connect_timeout(&ssh, Duration::from_secs(5))
        .expect_err("no connection while down");
    assert_eq!(
        err.kind(),
        ErrorKind::TimedOut,
        "a stall, not a refusal or no route: {err}"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(4900),
        "{:?}",
        t.elapsed()
    );
    TcpStream::connect_timeout(&other, Duration::from_secs(3)).expect("lab-02 is not partitioned");
    held.write_all(request)
        .expect("request while down (buffered)");
    held.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let stalled = held.read(&mut buf).expect_err("no answer while down");
    assert!(
        matches!(stalled.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{stalled}"
    );

    lab.link_up("lab-01");
    // The request is retransmitted (with backoff) and answered on the same connection.
    held.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let n = held
        .read(&mut buf)
        .expect("the held connection resumes after link-up");
    assert!(
        String::from_utf8_lossy(&buf[..n]).ends_with("ok"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    TcpStream::connect_timeout(&ssh, Duration::from_secs(3))
        .expect("new connections work after link-up");
    assert!(
        lab.run(&["status"])
            .lines()
            .any(|l| l.starts_with("lab-01") && l.ends_with(" up"))
    );
}
