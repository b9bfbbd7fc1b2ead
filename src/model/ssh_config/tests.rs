//! Tests of ssh_config parsing and resolution (the differential test against `ssh -G` is
//! in tests/integration/ssh_config_diff.rs).

use super::*;

fn local() -> Local {
    Local {
        user: "me".into(),
        home: "/home/me".into(),
        hostname: "ctl.example".into(),
        uid: 1000,
    }
}

fn config(text: &str) -> Config {
    Config {
        files: vec![parse("cfg", text).unwrap_or_else(|e| panic!("{e:?}"))],
    }
}

fn for_host(config: &Config, host: &str, preset: &Preset) -> Resolved {
    resolve(
        config,
        Query {
            host,
            preset,
            local: &local(),
        },
    )
}

#[test]
fn first_value_wins_and_files_accumulate() {
    let c = config(
        "Host web-*\n  HostName %h.internal\n  Port 2201\n  IdentityFile ~/.ssh/%h\nHost *\n  Port 22\n  User ops\n  IdentityFile /keys/%r@%n:%p\n",
    );
    let r = for_host(&c, "web-01", &Preset::default());
    assert_eq!(
        r.hostname.map(|f| f.value).as_deref(),
        Some("web-01.internal")
    );
    assert_eq!(r.port.map(|f| (f.value.get(), f.at.line)), Some((2201, 3)));
    assert_eq!(r.user.map(|f| f.value).as_deref(), Some("ops"));
    let files: Vec<String> = r.identity_files.into_iter().map(|f| f.value).collect();
    assert_eq!(
        files,
        ["/home/me/.ssh/web-01.internal", "/keys/ops@web-01:2201"]
    );
    // The inventory's user and port beat the config, and the tokens see them.
    let preset = Preset {
        user: Some("deploy".into()),
        port: Some("2222".parse().unwrap_or(Port::SSH)),
    };
    let r = for_host(&c, "web-01", &preset);
    assert_eq!(r.identity_files[1].value, "/keys/deploy@web-01:2222");
}

#[test]
fn negation_match_and_final_pass() {
    let c = config(
        "Host * !db-*\n  User web\nMatch host *.internal user ops\n  Port 9\nHost db-1\n  HostName db-1.internal\n  User ops\nMatch final host db-1.internal\n  ConnectTimeout 1m\n",
    );
    let r = for_host(&c, "db-1", &Preset::default());
    assert_eq!(r.user.map(|f| f.value).as_deref(), Some("ops"));
    // The Match host line came before HostName was set: it applies only in the final pass.
    assert_eq!(r.port.map(|f| f.value.get()), Some(9));
    assert_eq!(r.connect_timeout.map(|f| f.value), Some(60));
    let r = for_host(&c, "web-1", &Preset::default());
    assert_eq!(r.user.map(|f| f.value).as_deref(), Some("web"));
    assert_eq!(r.port, None);
}

#[test]
fn unsupported_criteria_and_options_warn_only_where_they_apply() {
    let c = config(
        "Match exec true\n  Port 5\nHost a\n  ProxyCommand nc %h %p\n  ProxyJump j\n  SendEnv LANG\n  Ciphers aes128-ctr\n  Bogus 1\nHost b\n  Ciphers x\n",
    );
    let r = for_host(&c, "a", &Preset::default());
    assert_eq!(r.port, None, "the exec block's settings leaked");
    assert_eq!(r.proxy_jump, None, "ProxyJump after ProxyCommand applied");
    let lines: Vec<String> = r
        .warnings
        .iter()
        .map(|w| format!("{}: {}", w.at, w.message))
        .collect();
    assert_eq!(
        lines,
        [
            "cfg:1: Match exec is not supported by ngfleet; the settings of this block are not applied",
            "cfg:4: ProxyCommand is not supported by ngfleet (use ProxyJump); the host is connected to directly",
            "cfg:7: Ciphers is not supported by ngfleet and is not applied",
            "cfg:8: Bogus is not an option ngfleet knows; it is not applied",
        ]
    );
}

#[test]
fn bad_values_are_refused_with_line_and_keyword() {
    let err = parse(
        "cfg",
        "Host a\n  Port ssh\n  IdentityFile %x\n  StrictHostKeyChecking maybe\n  Match foo bar\n  ProxyJump a;b\n",
    )
    .err()
    .unwrap_or_default();
    let lines: Vec<String> = err.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert!(
        lines[0].starts_with("cfg:2:1: Port: expected a port number"),
        "{lines:#?}"
    );
    assert!(
        lines[1].contains("cfg:3:1: IdentityFile: unknown token %x"),
        "{lines:#?}"
    );
    assert!(
        lines[2].contains("cfg:4:1: StrictHostKeyChecking: expected"),
        "{lines:#?}"
    );
    assert!(
        lines[3].contains("cfg:5:1: Match: unknown criterion \"foo\""),
        "{lines:#?}"
    );
    assert!(
        lines[4].contains("cfg:6:1: ProxyJump: expected a jump host"),
        "{lines:#?}"
    );
}

#[test]
fn proxy_jump_chains_and_none() {
    let c = config("Host a\n  ProxyJump none\nHost *\n  ProxyJump u@j1:2200,j2\n");
    assert_eq!(
        for_host(&c, "a", &Preset::default())
            .proxy_jump
            .map(|f| f.value),
        Some(ProxyJump::None)
    );
    let jump = for_host(&c, "b", &Preset::default())
        .proxy_jump
        .map(|f| f.value.to_string());
    assert_eq!(jump.as_deref(), Some("u@j1:2200,j2"));
}

#[test]
fn debian_stock_config_is_quiet() {
    let c = config(
        "Include /etc/ssh/ssh_config.d/*.conf\nHost *\n    SendEnv LANG LC_*\n    HashKnownHosts yes\n    GSSAPIAuthentication yes\n",
    );
    assert_eq!(for_host(&c, "x", &Preset::default()), Resolved::default());
}
