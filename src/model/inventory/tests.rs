//! Tests of inventory reading: groups, ranges, precedence, connection vars, errors.

use super::*;

fn parse(text: &str) -> Inventory {
    Inventory::parse("inv.yaml", text).unwrap_or_else(|e| panic!("{e}"))
}

fn problems(text: &str) -> Vec<String> {
    Inventory::parse("inv.yaml", text)
        .expect_err("should be invalid")
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn names(inv: &Inventory) -> Vec<&str> {
    inv.hosts().iter().map(|h| h.name.as_str()).collect()
}

fn var(inv: &Inventory, host: &str, name: &str) -> Option<String> {
    inv.find(host).and_then(|h| h.vars.text(name))
}

#[test]
fn nested_groups_and_ranges() {
    let inv = parse(
        "all:\n  children:\n    web:\n      children:\n        eu:\n          hosts:\n            web-[01:03]:\n    db:\n      hosts:\n        db-[a:b]:\n",
    );
    // Breadth first, as Ansible: `db`'s own hosts before those of `web`'s child `eu`.
    assert_eq!(names(&inv), ["db-a", "db-b", "web-01", "web-02", "web-03"]);
    assert_eq!(inv.group("web"), Some(&[2, 3, 4][..]));
    assert_eq!(inv.group("eu"), Some(&[2, 3, 4][..]));
    assert_eq!(inv.group("all").map(<[usize]>::len), Some(5));
    assert_eq!(
        inv.find("web-02").map(|h| h.groups.to_vec()),
        Some(vec!["all".to_owned(), "eu".to_owned(), "web".to_owned()])
    );
}

#[test]
fn a_host_in_several_groups_is_one_host() {
    let inv = parse(
        "all:\n  children:\n    a:\n      hosts:\n        h1: {x: 1}\n    b:\n      hosts:\n        h1: {y: 2}\n        h2:\n",
    );
    assert_eq!(names(&inv), ["h1", "h2"]);
    assert_eq!(var(&inv, "h1", "x").as_deref(), Some("1"));
    assert_eq!(var(&inv, "h1", "y").as_deref(), Some("2"));
    assert_eq!(inv.group("a"), Some(&[0][..]));
    assert_eq!(inv.group("b"), Some(&[0, 1][..]));
}

#[test]
fn precedence_all_then_parent_then_child_then_host() {
    let inv = parse(
        "\
all:
  vars: {v: all, a: all, p: all, c: all}
  children:
    parent:
      vars: {v: parent, p: parent, c: parent}
      children:
        child:
          vars: {v: child, c: child}
          hosts:
            h1: {v: host}
            h2:
",
    );
    assert_eq!(var(&inv, "h1", "v").as_deref(), Some("host"));
    assert_eq!(var(&inv, "h2", "v").as_deref(), Some("child"));
    assert_eq!(var(&inv, "h2", "c").as_deref(), Some("child"));
    assert_eq!(var(&inv, "h2", "p").as_deref(), Some("parent"));
    assert_eq!(var(&inv, "h2", "a").as_deref(), Some("all"));
}

#[test]
fn same_depth_groups_merge_by_name_and_priority() {
    let text = "\
all:
  children:
    zeta:
      vars: {v: zeta}
      hosts: {h: }
    alpha:
      vars: {v: alpha}
      hosts: {h: }
";
    assert_eq!(var(&parse(text), "h", "v").as_deref(), Some("zeta"));
    let prioritised = text.replace("{v: zeta}", "{v: zeta, ansible_group_priority: 0}");
    assert_eq!(
        var(&parse(&prioritised), "h", "v").as_deref(),
        Some("alpha")
    );
}

#[test]
fn connection_vars_and_defaults() {
    let inv = parse(
            "\
all:
  vars:
    ansible_user: deploy
    ansible_become: yes
    ansible_ssh_common_args: '-o UserKnownHostsFile=/etc/kh -o StrictHostKeyChecking=no -J jump@bastion:2200'
  hosts:
    web-01:
      ansible_host: 10.0.0.1
      ansible_port: \"2222\"
      ansible_ssh_private_key_file: ~/.ssh/id
    web-02:
      ngfleet_jump: other:22
      ngfleet_known_hosts: /srv/kh
      nginx_binary: /opt/nginx/sbin/nginx
      nginx_pid_file: /opt/nginx/logs/nginx.pid
      team: payments
",
        );
    let h1 = inv.find("web-01").expect("web-01");
    let c = &h1.connection;
    assert_eq!(
        (h1.address(), c.port.map_or(22, |p| p.get())),
        ("10.0.0.1", 2222)
    );
    assert_eq!(c.user.as_deref(), Some("deploy"));
    assert_eq!(c.identity_file.as_deref(), Some("~/.ssh/id"));
    assert_eq!(c.become_, Become::Sudo);
    assert_eq!(
        c.known_hosts,
        Some(KnownHostsFile {
            path: "/etc/kh".into(),
            from: KnownHostsVar::UserKnownHostsFile
        })
    );
    assert_eq!(c.host_key_checking, HostKeyChecking::No);
    assert_eq!(
        c.jump.as_ref().map(ToString::to_string).as_deref(),
        Some("jump@bastion:2200")
    );
    assert_eq!(h1.nginx.binary.as_str(), DEFAULT_NGINX_BINARY);
    assert_eq!(h1.nginx.pid_file.as_str(), DEFAULT_NGINX_PID_FILE);

    let h2 = inv.find("web-02").expect("web-02");
    assert_eq!(h2.address(), "web-02");
    assert_eq!(h2.connection.port, None);
    assert_eq!(
        h2.connection.known_hosts,
        Some(KnownHostsFile {
            path: "/srv/kh".into(),
            from: KnownHostsVar::Ngfleet
        })
    );
    assert_eq!(
        h2.connection
            .jump
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("other:22")
    );
    assert_eq!(h2.nginx.binary.as_str(), "/opt/nginx/sbin/nginx");
    assert_eq!(h2.vars.text("team").as_deref(), Some("payments"));
}

#[test]
fn top_level_groups_without_all() {
    let inv = parse("web:\n  hosts:\n    w1:\ndb:\n  hosts:\n    d1:\n");
    assert_eq!(names(&inv), ["w1", "d1"]);
    assert_eq!(inv.group("all").map(<[usize]>::len), Some(2));
}

#[test]
fn ungrouped_hosts() {
    let inv =
        parse("all:\n  hosts:\n    lonely:\n  children:\n    g:\n      hosts:\n        member:\n");
    assert_eq!(inv.group("ungrouped"), Some(&[0][..]));
}

#[test]
fn every_problem_with_file_line_column_and_path() {
    let got = problems(
        "\
all:
  vars:
    ansible_become: maybe
  children:
    web:
      hostz:
        web-01:
      hosts:
        web-03:
          ansible_port: ssh
          nginx_binary: sbin/nginx
        web-[05:01]:
        web-04:
          ngfleet_jump: 'a,b;c'
          ansible_ssh_common_args: '-o ProxyCommand=nc %h %p'
          ansible_host: '{{ lookup(\"x\") }}'
",
    );
    assert_eq!(
        got,
        [
            "inv.yaml:3:21: all.vars.ansible_become: expected a boolean (true/false/yes/no), found \"maybe\"",
            "inv.yaml:6:7: all.children.web.hostz: unknown key `hostz` (did you mean `hosts`?)",
            "inv.yaml:10:25: all.children.web.hosts.web-03.ansible_port: expected a port number from 1 to 65535, found \"ssh\"",
            "inv.yaml:11:25: all.children.web.hosts.web-03.nginx_binary: expected an absolute path, found \"sbin/nginx\"",
            "inv.yaml:12:9: all.children.web.hosts[\"web-[05:01]\"]: range start 05 is after its end 01",
            "inv.yaml:14:25: all.children.web.hosts.web-04.ngfleet_jump: expected a jump host as [user@]host[:port], found \"b;c\"",
            "inv.yaml:15:36: all.children.web.hosts.web-04.ansible_ssh_common_args: ProxyCommand is not supported; use ProxyJump or ngfleet_jump",
            "inv.yaml:16:25: all.children.web.hosts.web-04.ansible_host: templated values are not supported in ansible_host, found \"{{ lookup(\\\"x\\\") }}\"",
        ]
    );
}

#[test]
fn wrong_shapes_are_reported() {
    assert_eq!(
        problems("all:\n  hosts: [a, b]\n"),
        ["inv.yaml:2:10: all.hosts: expected a mapping of host names, found a list"]
    );
    assert_eq!(
        problems("all:\n  children:\n    web: 3\n"),
        [
            "inv.yaml:3:10: all.children.web: expected a group (a mapping with hosts, vars or children), found 3"
        ]
    );
    assert_eq!(
        problems("- a\n- b\n"),
        [
            "inv.yaml:1:1: expected an inventory (a mapping of groups, usually under `all`), found a list"
        ]
    );
}

#[test]
fn group_cycles_are_errors() {
    let got = problems(
        "all:\n  children:\n    a:\n      children:\n        b:\n    b:\n      children:\n        a:\n",
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains("group cycle: a -> b -> a") || got[0].contains("group cycle: b -> a -> b"),
        "{got:?}"
    );
}

#[test]
fn syntax_errors_carry_a_position() {
    let got = problems("all:\n  hosts:\n    a: [\n");
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("inv.yaml:"), "{got:?}");
    assert!(got[0].contains("invalid YAML"), "{got:?}");
}

/// The inventory: a host merging a common mapping must get its nginx paths.
const MERGED: &str = "\
all:
  vars:
    common: &common
      nginx_binary: /opt/nginx/sbin/nginx
      nginx_pid_file: /opt/nginx/logs/nginx.pid
      team: web
    edge: &edge
      team: edge
      ansible_port: 2222
  hosts:
    lab-01: {<<: *common, ansible_host: 10.0.0.1}
    lab-02:
      <<: [*edge, *common]
      ansible_host: 10.0.0.2
    lab-03:
      <<: [*common, *edge]
      team: own
";

#[test]
fn merge_keys_give_hosts_the_merged_values() {
    let inv = parse(MERGED);
    let h1 = inv.find("lab-01").expect("lab-01");
    assert_eq!(h1.nginx.binary.as_str(), "/opt/nginx/sbin/nginx");
    assert_eq!(h1.nginx.pid_file.as_str(), "/opt/nginx/logs/nginx.pid");
    assert_eq!(h1.address(), "10.0.0.1");
    assert_eq!(h1.vars.get("<<"), None, "no variable named `<<`");
    let h2 = inv.find("lab-02").expect("lab-02");
    assert_eq!(
        h2.vars.text("team").as_deref(),
        Some("edge"),
        "earlier wins"
    );
    assert_eq!(h2.connection.port.map_or(22, |p| p.get()), 2222);
    assert_eq!(h2.nginx.binary.as_str(), "/opt/nginx/sbin/nginx");
    assert_eq!(h2.address(), "10.0.0.2");
    let h3 = inv.find("lab-03").expect("lab-03");
    assert_eq!(h3.vars.text("team").as_deref(), Some("own"), "own key wins");
    assert_eq!(h3.connection.port.map_or(22, |p| p.get()), 2222);
}

#[test]
fn merged_values_are_checked_where_they_were_written() {
    let text = MERGED.replace(
        "nginx_binary: /opt/nginx/sbin/nginx",
        "nginx_binary: sbin/nginx",
    );
    assert_eq!(
        problems(&text),
        [
            // Once per host that merges it, each at the anchor's line.
            "inv.yaml:4:21: all.hosts.lab-01.nginx_binary: expected an absolute path, found \"sbin/nginx\"",
            "inv.yaml:4:21: all.hosts.lab-02.nginx_binary: expected an absolute path, found \"sbin/nginx\"",
            "inv.yaml:4:21: all.hosts.lab-03.nginx_binary: expected an absolute path, found \"sbin/nginx\"",
        ]
    );
}

#[test]
fn bad_merge_values_are_errors_with_a_position() {
    assert_eq!(
        problems("all:\n  hosts:\n    h1: {<<: /opt/nginx}\n    h2:\n      <<: [{a: 1}, 3]\n"),
        [
            "inv.yaml:3:14: all.hosts.h1[\"<<\"]: a merge key (`<<`) takes a mapping, an alias of a mapping, or a list of those; found \"/opt/nginx\"",
            "inv.yaml:5:20: all.hosts.h2[\"<<\"][1]: a merge list (`<<: [...]`) takes mappings or aliases of mappings; found 3",
        ]
    );
}

#[test]
fn merged_groups_and_hosts_are_read_like_written_ones() {
    let inv = parse(
        "\
all:
  children:
    web: &web
      vars: {tier: web}
      hosts:
        web-[1:2]:
    canary:
      <<: *web
      hosts: {web-1: }
",
    );
    assert_eq!(names(&inv), ["web-1", "web-2"]);
    assert_eq!(inv.group("canary"), Some(&[0][..]));
    assert_eq!(var(&inv, "web-2", "tier").as_deref(), Some("web"));
}

#[test]
fn hostile_host_names_are_refused_with_their_place() {
    let got = problems(
        "\
all:
  hosts:
    web-01:
    web-03;touch${IFS}/tmp/x:
    \"web 04\":
    \"db-[1:3]`id`\":
    ok-[1:2]:
      ansible_host: \"10.0.0.1;reboot\"
",
    );
    assert_eq!(got.len(), 4, "{got:#?}");
    assert!(got[0].starts_with("inv.yaml:4:5: all.hosts[\"web-03;touch${IFS}/tmp/x\"]: host name \"web-03;touch${IFS}/tmp/x\" has the character ';'"), "{got:#?}");
    assert!(
        got[1].starts_with(
            "inv.yaml:5:5: all.hosts[\"web 04\"]: host name \"web 04\" has whitespace"
        ),
        "{got:#?}"
    );
    assert!(got[2].starts_with("inv.yaml:6:5: all.hosts[\"db-[1:3]`id`\"]: host name \"db-1`id`\" has the character '`'"), "{got:#?}");
    assert!(got[3].starts_with("inv.yaml:8:21: all.hosts[\"ok-[1:2]\"].ansible_host: host name \"10.0.0.1;reboot\" has the character ';'"), "{got:#?}");
}

#[test]
fn addresses_are_host_names() {
    let inv = parse(
        "all:\n  hosts:\n    10.0.0.7:\n    \"2001:db8::1\":\n    web_1.example.com: {ansible_host: \"::1\"}\n",
    );
    assert_eq!(
        names(&inv),
        ["10.0.0.7", "2001:db8::1", "web_1.example.com"]
    );
    assert_eq!(inv.host(2).address(), "::1");
}

fn limited(text: &str, max_hosts: usize) -> Result<Inventory, Vec<String>> {
    Inventory::parse_within("inv.yaml", text, Limits { max_hosts })
        .map_err(|e| e.iter().map(ToString::to_string).collect())
}

#[test]
fn the_host_limit_is_over_the_whole_inventory() {
    let text = "all:\n  children:\n    a:\n      hosts:\n        a-[1:4]:\n    b:\n      hosts:\n        b-[1:4]:\n        a-[1:4]:\n    c:\n      hosts:\n        c-[1:4]:\n";
    assert_eq!(limited(text, 12).map(|inv| inv.hosts().len()), Ok(12));
    assert_eq!(
        limited(text, 11).map(|inv| inv.hosts().len()),
        Err(vec![
            "inv.yaml:12:9: all.children.c.hosts[\"c-[1:4]\"]: the inventory has more than 11 hosts, the most it may have (raise the limit with --max-hosts N)".to_owned()
        ]),
        "many small ranges cannot get past it; a host listed twice counts once"
    );
}

#[test]
fn a_range_over_the_limit_is_refused_before_it_is_expanded() {
    let got = limited(
        "all:\n  hosts:\n    h[0:18446744073709551615]:\n",
        DEFAULT_MAX_HOSTS,
    );
    assert_eq!(
        got.map(|inv| inv.hosts().len()),
        Err(vec![
            "inv.yaml:3:5: all.hosts[\"h[0:18446744073709551615]\"]: host pattern expands to more than 1000000 names, the most hosts an inventory may have (raise the limit with --max-hosts N)".to_owned()
        ])
    );
}

#[test]
fn hosts_of_one_range_share_their_variables() {
    let inv = parse(
        "all:\n  vars: {ansible_user: deploy}\n  hosts:\n    w-[1:3]: {team: t}\n    solo: {team: s}\n",
    );
    let (w1, w3, solo) = (inv.host(0), inv.host(2), inv.host(3));
    assert!(std::sync::Arc::ptr_eq(&w1.connection, &w3.connection));
    assert!(std::sync::Arc::ptr_eq(&w1.groups, &solo.groups));
    assert_eq!(w3.vars.text("team").as_deref(), Some("t"));
    assert_eq!(solo.vars.text("team").as_deref(), Some("s"));
    assert_eq!(solo.connection.user.as_deref(), Some("deploy"));
}

fn selected(inv: &Inventory, pattern: &str) -> Vec<String> {
    use crate::model::pattern::HostUniverse;
    let pattern: crate::model::pattern::Pattern = pattern.parse().expect("pattern");
    let picked = pattern.select(inv).expect("selects");
    picked
        .into_iter()
        .map(|h| inv.host_name(h).to_owned())
        .collect()
}

#[test]
fn hosts_under_all_come_first_and_a_groups_own_hosts_before_its_childrens() {
    let inv = parse(
        "all:\n  children:\n    web:\n      hosts: {h2: , h1: }\n      children:\n        eu: {hosts: {h5: }}\n    db:\n      hosts: {h3: }\n  hosts:\n    h0:\n",
    );
    assert_eq!(names(&inv), ["h0", "h2", "h1", "h3", "h5"]);
    assert_eq!(selected(&inv, "db:web"), ["h3", "h2", "h1", "h5"]);
    assert_eq!(selected(&inv, "web,h0"), ["h2", "h1", "h5", "h0"]);
}

#[test]
fn subscripts_index_the_groups_own_order() {
    let inv = parse(
        "all:\n  children:\n    web: {hosts: {h1: , h2: }}\n    canaries: {hosts: {h2: , h1: }}\n",
    );
    assert_eq!(selected(&inv, "canaries[0]"), ["h2"]);
    assert_eq!(selected(&inv, "canaries[-1]"), ["h1"]);
}

#[test]
fn top_level_groups_join_all_after_its_listed_children_unless_they_have_a_parent() {
    let inv = parse(
        "late: {hosts: {l1: }}\nall:\n  children:\n    early: {hosts: {e1: }}\nchild: {hosts: {c1: }}\nparent: {children: {child: }}\n",
    );
    // all's children: ungrouped, early, then late and parent (child has a parent).
    assert_eq!(names(&inv), ["e1", "l1", "c1"]);
}

#[test]
fn a_host_listed_under_ungrouped_and_elsewhere_leaves_ungrouped() {
    let inv = parse(
        "all:\n  hosts: {solo: }\n  children:\n    ungrouped: {hosts: {both: , only: }}\n    web: {hosts: {both: }}\n",
    );
    assert_eq!(selected(&inv, "ungrouped"), ["only", "solo"]);
    assert!(
        !inv.find("both")
            .expect("both")
            .groups
            .contains(&"ungrouped".to_owned())
    );
}

#[test]
fn host_keys_with_ports_and_string_sections() {
    let inv = parse(
        "all:\n  hosts:\n    \"web1:2222\":\n    \"[2001:db8::3]:2200\":\n    \"db[1:2]:2300\": {ansible_port: 22}\n  children:\n    web:\n      hosts: web9\n    top:\n      children: web\n",
    );
    let port = |h: &str| {
        inv.find(h)
            .map(|h| h.connection.port.map_or(22, |p| p.get()))
    };
    assert_eq!(port("web1"), Some(2222));
    assert_eq!(port("2001:db8::3"), Some(2200));
    assert_eq!(port("db1"), Some(22));
    assert_eq!(port("web9"), Some(22));
    assert_eq!(selected(&inv, "top"), ["web9"]);
}

#[test]
fn legacy_ssh_aliases_are_honoured_and_win_as_in_ansible() {
    let inv = parse(
        "all:\n  vars: {ansible_host: 10.0.0.9}\n  hosts:\n    a: {ansible_ssh_host: 10.0.0.1, ansible_ssh_port: 2201, ansible_ssh_user: deploy}\n    b: {ansible_ssh_host: 10.0.0.2}\n    c: {ansible_port: 2203, ansible_user: ops}\n",
    );
    let a = inv.find("a").expect("a");
    assert_eq!(a.address(), "10.0.0.1");
    assert_eq!(a.connection.port.map_or(22, |p| p.get()), 2201);
    assert_eq!(a.connection.user.as_deref(), Some("deploy"));
    // The alias wins over `ansible_host` whatever the layer (here, `all`'s vars).
    assert_eq!(inv.find("b").expect("b").address(), "10.0.0.2");
    let c = inv.find("c").expect("c");
    assert_eq!(
        (c.address(), c.connection.port.map_or(22, |p| p.get())),
        ("10.0.0.9", 2203)
    );
    assert_eq!(c.connection.user.as_deref(), Some("ops"));
}
