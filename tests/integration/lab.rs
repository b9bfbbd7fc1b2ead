//! The lab as the tests see it: `scripts/lab up` in a directory of its own, torn down on drop.
//! Every lab test gets its own id, so labs run side by side without touching each other.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::support::repo;

/// Lab ids in use by this test process (the lab script allows 0..=40; 0 is the demo's and 39
/// the benchmark's, so tests take 1..=38 and give them back on drop).
static IDS: Mutex<[bool; 39]> = Mutex::new([false; 39]);

fn take_id() -> u32 {
    loop {
        if let Ok(mut ids) = IDS.lock()
            && let Some(free) = (1..39).find(|&i| !ids[i])
        {
            ids[free] = true;
            return free as u32;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn give_back(id: u32) {
    if let Ok(mut ids) = IDS.lock() {
        ids[id as usize] = false;
    }
}

/// One lab host, from `hosts.tsv`.
#[derive(Clone, Debug)]
pub struct LabHost {
    pub name: String,
    pub address: String,
    pub ssh_port: u16,
    pub dir: PathBuf,
    /// The host's network namespace (`ngfK-I`), or `None` in loopback mode.
    pub netns: Option<String>,
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
}

pub struct Lab {
    pub dir: PathBuf,
    pub hosts: Vec<LabHost>,
    id: u32,
}

impl Lab {
    /// Brings up `n` hosts, or returns `None` (saying why) when this machine cannot run a
    /// lab at all: not root and no sshd/nginx installed. As root, a failure is a failure.
    pub fn up(n: usize) -> Option<Lab> {
        let root = is_root();
        let tools = Path::new("/usr/sbin/sshd").exists() && Path::new("/usr/sbin/nginx").exists();
        if !root && !tools {
            eprintln!("SKIP: this machine cannot run a lab (not root, and sshd or nginx missing)");
            return None;
        }
        let id = take_id();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("lab-{id}"));
        let out = Command::new(repo().join("scripts/lab"))
            .args(["up", &n.to_string(), "--id", &id.to_string()])
            .arg("--dir")
            .arg(&dir)
            .output()
            .expect("run scripts/lab");
        assert!(
            out.status.success(),
            "scripts/lab up failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let hosts = fs::read_to_string(dir.join("hosts.tsv"))
            .expect("hosts.tsv")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                LabHost {
                    name: f[0].to_owned(),
                    address: f[2].to_owned(),
                    ssh_port: f[3].parse().expect("port"),
                    dir: PathBuf::from(f[5]),
                    netns: Some(f[1]).filter(|ns| *ns != "-").map(str::to_owned),
                }
            })
            .collect();
        Some(Lab { dir, hosts, id })
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

impl Lab {
    /// Takes `host`'s link down (its veth on the bridge side): packets to and from it are
    /// dropped and no connection is closed, as in a network partition. Needs netns mode.
    pub fn cut_link(&self, host: &str) {
        self.set_link(host, "down");
    }

    /// Brings `host`'s link back up after [`Lab::cut_link`].
    pub fn restore_link(&self, host: &str) {
        self.set_link(host, "up");
    }

    fn set_link(&self, host: &str, state: &str) {
        let ns = self
            .host(host)
            .netns
            .clone()
            .expect("a partition needs a netns lab (run the tests as root)");
        // scripts/lab names the bridge side of host i's veth pair `ngfKvI` (netns `ngfK-I`).
        let veth = ns.replacen('-', "v", 1);
        let out = Command::new("ip")
            .args(["link", "set", &veth, state])
            .output()
            .expect("run ip");
        assert!(
            out.status.success(),
            "ip link set {veth} {state}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
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

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
