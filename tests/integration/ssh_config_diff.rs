//! The differential test of ssh_config: ngfleet's resolution of a host against OpenSSH's own
//! (`ssh -G -F FILE [-l USER -p PORT] HOST`), on hand-written configs and on generated ones
//! (Host patterns with negation, Match all/host/originalhost/user/localuser/final/canonical,
//! Include with globs inside and outside blocks, first value wins, `%` tokens), comparing
//! every key ngfleet reads. Any mismatch fails, with the config and both answers.
//!
//! Files named by `IdentityFile`/`CertificateFile` are compared where `ssh -G` prints them
//! expanded (it prints them as written); their tokens are the same as `UserKnownHostsFile`'s,
//! which `ssh -G` expands, so the generated configs put tokens there.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use ngfleet::model::ssh_config::{Local, Preset, ProxyJump, Query, Resolved, Strictness, YesNo};
use ngfleet::model::values::Port;
use ngfleet::ssh::config_file::{ConfigChoice, load};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The keys compared.
const KEYS: &[&str] = &[
    "hostname",
    "port",
    "user",
    "identityfile",
    "certificatefile",
    "identitiesonly",
    "proxyjump",
    "userknownhostsfile",
    "stricthostkeychecking",
    "connecttimeout",
    "serveraliveinterval",
    "serveralivecountmax",
];

/// The controller as OpenSSH sees it: the passwd entry's user and home (not `$HOME`).
fn local() -> Local {
    let uid =
        std::fs::metadata("/proc/self").map_or(0, |m| std::os::unix::fs::MetadataExt::uid(&m));
    let passwd = fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    let entry: Vec<&str> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 5 && f[2] == uid.to_string())
        .expect("a passwd entry for this uid");
    Local {
        user: entry[0].to_owned(),
        home: entry[5].to_owned(),
        hostname: fs::read_to_string("/proc/sys/kernel/hostname")
            .expect("hostname")
            .trim()
            .to_owned(),
        uid,
    }
}

/// `ssh -G`'s answer for the compared keys, each key's values in order.
fn openssh(file: &Path, host: &str, preset: &Preset) -> BTreeMap<String, Vec<String>> {
    let mut cmd = Command::new("ssh");
    cmd.arg("-G").arg("-F").arg(file);
    if let Some(user) = &preset.user {
        cmd.args(["-l", user]);
    }
    if let Some(port) = preset.port {
        cmd.args(["-p", &port.to_string()]);
    }
    let out = cmd.arg(host).output().expect("ssh -G (openssh-client)");
    assert!(
        out.status.success(),
        "ssh -G -F {} {host} failed: {}\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr),
        fs::read_to_string(file).unwrap_or_default()
    );
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        let key = key.to_ascii_lowercase();
        if KEYS.contains(&key.as_str()) || key == "proxycommand" {
            map.entry(key).or_default().push(value.to_owned());
        }
    }
    map
}

/// ngfleet's answer in `ssh -G`'s words (`None` for a key OpenSSH prints as written).
fn ours(r: &Resolved, host: &str, preset: &Preset, local: &Local) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut put = |k: &str, v: String| map.entry(k.to_owned()).or_default().push(v);
    put(
        "hostname",
        r.hostname
            .as_ref()
            .map_or_else(|| host.to_ascii_lowercase(), |f| f.value.clone()),
    );
    put(
        "port",
        preset
            .port
            .or(r.port.as_ref().map(|f| f.value))
            .map_or(22, Port::get)
            .to_string(),
    );
    put(
        "user",
        preset
            .user
            .clone()
            .or_else(|| r.user.as_ref().map(|f| f.value.clone()))
            .unwrap_or_else(|| local.user.clone()),
    );
    for f in &r.identity_files {
        put("identityfile", f.value.clone());
    }
    for f in &r.certificate_files {
        put("certificatefile", f.value.clone());
    }
    put(
        "identitiesonly",
        match r.identities_only.as_ref().map(|f| f.value) {
            Some(YesNo::Yes) => "yes",
            _ => "no",
        }
        .to_owned(),
    );
    if let Some(f) = &r.proxy_jump
        && let ProxyJump::Hops(_) = f.value
    {
        put("proxyjump", f.value.to_string());
    }
    put(
        "userknownhostsfile",
        r.user_known_hosts.as_ref().map_or_else(
            || format!("{0}/.ssh/known_hosts {0}/.ssh/known_hosts2", local.home),
            |f| f.value.join(" "),
        ),
    );
    put(
        "stricthostkeychecking",
        match r.strict_host_key_checking.as_ref().map(|f| f.value) {
            Some(Strictness::Yes) => "true",
            Some(Strictness::No) => "false",
            Some(Strictness::AcceptNew) => "accept-new",
            Some(Strictness::Ask) | None => "ask",
        }
        .to_owned(),
    );
    put(
        "connecttimeout",
        r.connect_timeout
            .as_ref()
            .map_or_else(|| "none".to_owned(), |f| f.value.to_string()),
    );
    put(
        "serveraliveinterval",
        r.server_alive_interval
            .as_ref()
            .map_or(0, |f| f.value)
            .to_string(),
    );
    put(
        "serveralivecountmax",
        r.server_alive_count_max
            .as_ref()
            .map_or(3, |f| f.value)
            .to_string(),
    );
    map
}

#[derive(Default)]
struct Tally {
    configs: usize,
    resolutions: usize,
    keys: usize,
}

/// Compares one (config, host, preset); panics on a mismatch.
fn compare(file: &Path, host: &str, preset: &Preset, local: &Local, tally: &mut Tally) {
    let config = load(
        &ConfigChoice::File(file.to_owned()),
        Some(Path::new(&local.home)),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", fs::read_to_string(file).unwrap_or_default()));
    let resolved = ngfleet::model::ssh_config::resolve(
        &config,
        Query {
            host,
            preset,
            local,
        },
    );
    let theirs = openssh(file, host, preset);
    let mine = ours(&resolved, host, preset, local);
    let show = || {
        let mut text = format!(
            "config {} for host {host} preset {preset:?}\n",
            file.display()
        );
        text += &fs::read_to_string(file).unwrap_or_default();
        let dir = file.parent().map(Path::to_owned).unwrap_or_default();
        let mut included: Vec<_> = fs::read_dir(&dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        included.sort();
        for inc in included
            .iter()
            .filter(|p| p.display().to_string().ends_with(".conf"))
        {
            text += &format!(
                "--- {}\n{}",
                inc.display(),
                fs::read_to_string(inc).unwrap_or_default()
            );
        }
        text
    };
    if theirs.contains_key("proxycommand") {
        assert!(
            resolved.proxy_jump.is_none()
                && resolved
                    .warnings
                    .iter()
                    .any(|w| w.message.starts_with("ProxyCommand")),
            "OpenSSH uses a ProxyCommand; ngfleet must warn and not jump\n{}",
            show()
        );
    }
    for key in KEYS {
        let theirs = theirs.get(*key).cloned().unwrap_or_default();
        let mine = mine.get(*key).cloned().unwrap_or_default();
        let as_written = theirs.iter().any(|v| v.contains('%') || v.contains('~'));
        if matches!(*key, "identityfile" | "certificatefile") && (mine.is_empty() || as_written) {
            // OpenSSH's default key list, or files it prints unexpanded.
            continue;
        }
        assert_eq!(mine, theirs, "{key} differs\n{}", show());
        tally.keys += 1;
    }
    tally.resolutions += 1;
}

#[test]
fn hand_written_configs_resolve_as_openssh_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display().to_string();
    let local = local();
    fs::write(
        dir.path().join("inc-1.conf"),
        "Host web-*\n  Port 2201\n  IdentityFile /keys/inc1\nMatch final host *.internal\n  User fin\n",
    )
    .expect("write");
    fs::write(
        dir.path().join("inc-2.conf"),
        "Host *\n  ConnectTimeout 1m30s\n",
    )
    .expect("write");
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "first wins, negation, tokens",
            "Host web-* !web-2\n  HostName %h.internal\n  UserKnownHostsFile ~/kh/%h-%p-%r /kh2/%n-%u-%d-%i-%l-%L-%k-%C-%%\nHost *\n  Port 2222\n  User ops\n  HostName ignored\n  ServerAliveInterval 5\n  ServerAliveCountMax 7\n".to_owned(),
            vec!["web-1", "web-2", "db", "WEB-1"],
        ),
        (
            "include in and out of blocks",
            format!("Host web-*\n  Include {d}/inc-*.conf\nHost db\n  Include {d}/inc-2.conf\n  HostName db.internal\nHost *\n  IdentityFile /keys/all\n  IdentitiesOnly yes\n"),
            vec!["web-1", "db", "other"],
        ),
        (
            "match host after HostName, user, originalhost, final",
            "Host alias\n  HostName Real.Example\nMatch host real.example\n  Port 7\nMatch originalhost alias user root,ops\n  IdentityFile /keys/match\nMatch !host *.example\n  User nope\nMatch final host real.*\n  StrictHostKeyChecking accept-new\nMatch canonical all\n  ConnectTimeout 3\n".to_owned(),
            vec!["alias", "real.example", "x"],
        ),
        (
            "proxy jump chains, none, and a proxy command",
            "Host direct\n  ProxyJump none\nHost viacmd\n  ProxyCommand nc %h %p\nHost *\n  ProxyJump u@j1:2200,j2,[::1]:23\n  ProxyCommand ignored\n  StrictHostKeyChecking no\n  CertificateFile /certs/c1\n  CertificateFile /certs/c2\n".to_owned(),
            vec!["direct", "viacmd", "any"],
        ),
    ];
    let mut tally = Tally::default();
    for (i, (what, text, hosts)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("case-{i}"));
        fs::write(&file, text).expect("write");
        tally.configs += 1;
        for host in hosts {
            for preset in presets() {
                compare(&file, host, &preset, &local, &mut tally);
            }
        }
        eprintln!("case {i} ({what}) agrees");
    }
    eprintln!(
        "hand-written: {} configs, {} resolutions, {} keys compared, 0 mismatches",
        tally.configs, tally.resolutions, tally.keys
    );
    assert!(tally.keys >= 200, "too few comparisons: {}", tally.keys);
}

fn presets() -> [Preset; 2] {
    [
        Preset::default(),
        Preset {
            user: Some("ops".into()),
            port: Some("2022".parse().expect("port")),
        },
    ]
}

const HOSTS: &[&str] = &["web-1", "web-2", "db-1", "x.example.com", "bastion"];

fn pick<'a>(rng: &mut ChaCha8Rng, from: &[&'a str]) -> &'a str {
    from[rng.random_range(0..from.len())]
}

fn pattern(rng: &mut ChaCha8Rng) -> String {
    let p = pick(
        rng,
        &[
            "*",
            "web-*",
            "web-2",
            "db-?",
            "*.example.com",
            "x*",
            "bastion",
            "*.internal",
            "b*",
        ],
    );
    if rng.random_bool(0.25) {
        format!("!{p}")
    } else {
        p.to_owned()
    }
}

fn block_line(rng: &mut ChaCha8Rng) -> String {
    if rng.random_bool(0.6) {
        let n = rng.random_range(1..=3);
        let mut patterns: Vec<String> = (0..n).map(|_| pattern(rng)).collect();
        if patterns.iter().all(|p| p.starts_with('!')) {
            patterns.push("*".into());
        }
        return format!("Host {}", patterns.join(" "));
    }
    let list = |rng: &mut ChaCha8Rng| {
        let n = rng.random_range(1..=2);
        (0..n).map(|_| pattern(rng)).collect::<Vec<_>>().join(",")
    };
    let neg = |rng: &mut ChaCha8Rng| if rng.random_bool(0.2) { "!" } else { "" };
    match rng.random_range(0..7) {
        0 => "Match all".to_owned(),
        1 => format!("Match {}host {}", neg(rng), list(rng)),
        2 => format!("Match {}originalhost {}", neg(rng), list(rng)),
        3 => format!(
            "Match {}user {}",
            neg(rng),
            pick(rng, &["ops", "root", "o*", "web,ops"])
        ),
        4 => format!("Match final {}host {}", neg(rng), list(rng)),
        5 => format!(
            "Match canonical localuser {}",
            pick(rng, &["root", "*", "nobody"])
        ),
        _ => format!("Match {}final", neg(rng)),
    }
}

fn option(rng: &mut ChaCha8Rng) -> String {
    let n = rng.random_range(1..=9);
    match rng.random_range(0..13) {
        0 => format!(
            "HostName {}",
            pick(
                rng,
                &["%h.internal", "web-2", "X.Example.com", "h%h", "10.0.0.%%"]
            )
        ),
        1 => format!("Port {}", 2200 + n),
        2 => format!("User {}", pick(rng, &["ops", "deploy", "root"])),
        3 => format!("IdentityFile /keys/id{n}"),
        4 => format!("CertificateFile /certs/c{n}"),
        5 => format!("IdentitiesOnly {}", pick(rng, &["yes", "no"])),
        6 => format!(
            "ProxyJump {}",
            pick(rng, &["none", "j1", "u@j1:2200,j2", "ssh://v@j3:23"])
        ),
        7 => format!(
            "UserKnownHostsFile {}",
            pick(
                rng,
                &[
                    "/kh/%h-%p",
                    "~/kh/%r@%n %d/kh2",
                    "/kh/%C",
                    "/kh/%u-%i-%k-%L-%l"
                ]
            )
        ),
        8 => format!(
            "StrictHostKeyChecking {}",
            pick(rng, &["yes", "no", "ask", "accept-new", "off"])
        ),
        9 => format!("ConnectTimeout {}", pick(rng, &["10", "1m", "1m30s", "0"])),
        10 => format!("ServerAliveInterval {n}"),
        11 => format!("ServerAliveCountMax {n}"),
        _ => pick(
            rng,
            &[
                "SendEnv LANG",
                "HashKnownHosts yes",
                "GSSAPIAuthentication no",
            ],
        )
        .to_owned(),
    }
}

fn body(rng: &mut ChaCha8Rng, lines: usize, include: Option<&str>) -> String {
    let mut text = String::new();
    for _ in 0..lines {
        match rng.random_range(0..10) {
            0..=2 => text += &block_line(rng),
            3 if include.is_some() => {
                text += &format!("Include {}", include.unwrap_or_default());
            }
            _ => text += &format!("  {}", option(rng)),
        }
        text.push('\n');
    }
    text
}

#[test]
fn generated_configs_resolve_as_openssh_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let local = local();
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_c0f1);
    let mut tally = Tally::default();
    for i in 0..100 {
        let sub = dir.path().join(format!("c{i}"));
        fs::create_dir_all(&sub).expect("mkdir");
        for inc in 0..2 {
            let text = body(&mut rng, 8, None);
            fs::write(sub.join(format!("inc-{inc}.conf")), text).expect("write");
        }
        let pattern = format!("{}/inc-*.conf", sub.display());
        let main = sub.join("config");
        fs::write(&main, body(&mut rng, 24, Some(&pattern))).expect("write");
        tally.configs += 1;
        for host in HOSTS {
            for preset in presets() {
                compare(&main, host, &preset, &local, &mut tally);
            }
        }
    }
    eprintln!(
        "generated: {} configs, {} resolutions, {} keys compared with ssh -G, 0 mismatches",
        tally.configs, tally.resolutions, tally.keys
    );
    assert_eq!(tally.resolutions, 100 * HOSTS.len() * 2);
}
