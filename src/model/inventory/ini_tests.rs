//! Tests of INI inventories: Ansible's typing, sections, pending children, errors.

use super::super::Inventory;

fn parse(text: &str) -> Inventory {
    Inventory::parse("hosts", text).unwrap_or_else(|e| panic!("{e}"))
}

fn json(inv: &Inventory, host: &str, var: &str) -> String {
    let h = inv.find(host).expect("host");
    let v = h.vars.get(var).map(|v| v.value.clone()).unwrap_or_default();
    serde_json::to_string(&v).expect("json")
}

#[test]
fn values_are_typed_as_ansible_types_them() {
    // What ansible-inventory --list printed for this file (ansible-core 2.19.14).
    let inv = parse(
        "h0 a=1\n[web]\nw1:2222 http_port=8080 s=\"8080\" t='x y' u=yes v=True w=[1,2] f=1.50 z=0777 n=None e= q=\"'7'\"\nw2 ansible_port=22\n[web:vars]\ngp=8080\ngs=\"8080\"\ngb = True # c\ngw = hello # c\ngl=[1, 'a']\n[db:children]\nweb\n[db]\nd1\n",
    );
    let cases = [
        ("h0", "a", "1"),
        ("w1", "ansible_port", "2222"),
        ("w1", "http_port", "8080"),
        ("w1", "s", "8080"),
        ("w1", "t", "\"x y\""),
        ("w1", "u", "\"yes\""),
        ("w1", "v", "true"),
        ("w1", "w", "[1,2]"),
        ("w1", "f", "1.5"),
        ("w1", "z", "\"0777\""),
        ("w1", "n", "null"),
        ("w1", "e", "\"\""),
        ("w1", "q", "\"7\""),
        ("w2", "ansible_port", "22"),
        ("w2", "gp", "8080"),
        ("w2", "gs", "\"8080\""),
        ("w2", "gb", "true"),
        ("w2", "gw", "\"hello # c\""),
        ("w2", "gl", "[1,\"a\"]"),
    ];
    for (host, var, want) in cases {
        assert_eq!(json(&inv, host, var), want, "{host}.{var}");
    }
    let names: Vec<&str> = inv.hosts().iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["h0", "d1", "w1", "w2"]);
    assert!(
        inv.find("w1")
            .expect("w1")
            .groups
            .contains(&"db".to_owned())
    );
}

#[test]
fn children_may_be_named_before_they_are_declared() {
    let inv = parse("[top:children]\nb\na\n[a]\nha\n[b]\nhb\n");
    // `a` was declared first, so it is top's first child.
    assert_eq!(inv.group("top").map(<[usize]>::len), Some(2));
    let names: Vec<&str> = inv.hosts().iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["ha", "hb"]);
}

#[test]
fn a_file_of_host_names_is_ini() {
    let inv = parse("web-01\nweb-02:2200\n# comment\n; another\n");
    assert_eq!(inv.hosts().len(), 2);
    assert_eq!(
        inv.find("web-02")
            .map(|h| h.connection.port.map_or(22, |p| p.get())),
        Some(2200)
    );
}

#[test]
fn problems_have_lines_and_columns() {
    let problems: Vec<String> = Inventory::parse(
        "hosts",
        "[web]\nw1 novalue\nw2 ansible_port=ssh\n[web:nope]\n[x:children]\nmissing\n[y:vars]\nk=v\n[bad section]\n",
    )
    .expect_err("invalid")
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        problems,
        [
            "hosts:2:4: web: expected key=value host variable assignment, found \"novalue\"",
            "hosts:3:17: web.hosts.w2.ansible_port: expected a port number from 1 to 65535, found \"ssh\"",
            "hosts:4:1: web: section [web:nope] has unknown type: nope",
            "hosts:6:1: missing: group \"missing\" is named as a child but never declared",
            "hosts:7:1: y: section [y:vars] is for a group that is never declared",
            "hosts:9:1: y: invalid section entry \"[bad section]\": a section has no spaces and no other invalid characters",
        ]
    );
}
