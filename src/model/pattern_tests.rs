//! Tests of host patterns: parsing, Ansible's order and its selection rules.
use super::*;

/// A universe given as host names and (group, member indices) pairs.
struct Fleet {
    hosts: Vec<String>,
    groups: Vec<(&'static str, Vec<usize>)>,
}

impl HostUniverse for Fleet {
    fn host_count(&self) -> usize {
        self.hosts.len()
    }

    fn host_name(&self, index: usize) -> &str {
        &self.hosts[index]
    }

    fn group_members(&self, group: &str) -> Option<Vec<usize>> {
        self.groups
            .iter()
            .find(|(name, _)| *name == group)
            .map(|(_, members)| members.clone())
    }

    fn group_names(&self) -> Vec<&str> {
        self.groups.iter().map(|(name, _)| *name).collect()
    }
}

/// 0 web-01, 1 web-02, 2 web-03, 3 db-primary, 4 db-replica, 5 lb-1,
/// 6 solo.
fn fleet() -> Fleet {
    let hosts = [
        "web-01",
        "web-02",
        "web-03",
        "db-primary",
        "db-replica",
        "lb-1",
        "solo",
    ];
    Fleet {
        hosts: hosts.iter().map(|host| (*host).to_owned()).collect(),
        groups: vec![
            ("all", (0..7).collect()),
            ("ungrouped", vec![6]),
            ("web", vec![0, 1, 2]),
            ("db", vec![3, 4]),
            ("lb", vec![5]),
            ("eu", vec![0, 3, 5]),
            ("us", vec![1, 2, 4]),
            ("prod", (0..6).collect()),
            ("canary", vec![]),
        ],
    }
}

fn parse(source: &str) -> Pattern {
    match source.parse() {
        Ok(pattern) => pattern,
        Err(error) => panic!("{source:?} failed to parse: {error}"),
    }
}

fn select(source: &str) -> Vec<usize> {
    match parse(source).select(&fleet()) {
        Ok(hosts) => hosts,
        Err(error) => panic!("{source:?} failed to select: {error}"),
    }
}

fn parse_error(source: &str) -> String {
    match source.parse::<Pattern>() {
        Ok(pattern) => panic!("{source:?} parsed as {pattern:?}"),
        Err(error) => error.to_string(),
    }
}

fn select_error(source: &str) -> String {
    match parse(source).select(&fleet()) {
        Ok(hosts) => panic!("{source:?} selected {hosts:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn all_and_star() {
    assert_eq!(select("all"), [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(select("*"), [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(
        Pattern::all().select(&fleet()),
        Ok(vec![0, 1, 2, 3, 4, 5, 6])
    );
    assert_eq!(Pattern::all().to_string(), "all");
    assert_eq!(Pattern::all(), parse("all"));
}

#[test]
fn all_selects_nothing_from_an_empty_inventory() {
    let empty = Fleet {
        hosts: vec![],
        groups: vec![("all", vec![])],
    };
    assert_eq!(Pattern::all().select(&empty), Ok(vec![]));
    assert_eq!(parse("!all").select(&empty), Ok(vec![]));
    assert_eq!(
        parse("web").select(&empty),
        Err(PatternError::NoMatch {
            term: "web".to_owned()
        })
    );
}

#[test]
fn plain_names() {
    assert_eq!(select("web"), [0, 1, 2]);
    assert_eq!(select("db-primary"), [3]);
    assert_eq!(select("ungrouped"), [6]);
    assert_eq!(select("canary"), Vec::<usize>::new());
}

#[test]
fn union_keeps_the_order_of_the_terms_without_duplicates() {
    assert_eq!(select("db,web"), [3, 4, 0, 1, 2]);
    assert_eq!(select("db:web"), [3, 4, 0, 1, 2]);
    assert_eq!(select("eu,web,web-01"), [0, 3, 5, 1, 2]);
    assert_eq!(select("solo,lb-1,lb"), [6, 5]);
}

#[test]
fn intersection_and_exclusion() {
    assert_eq!(select("web:&eu"), [0]);
    assert_eq!(select("prod:!db-primary"), [0, 1, 2, 4, 5]);
    assert_eq!(select("web:db:&us:!web-03"), [1, 4]);
    // With a comma, colons do not separate: one term that matches nothing.
    assert_eq!(
        select_error("web,db:&us"),
        "pattern term \"db:&us\" matches no host or group"
    );
    assert_eq!(select("prod:&eu:&db"), [3]);
    assert_eq!(select("web:!canary"), [0, 1, 2]);
    assert_eq!(select("web:&canary"), Vec::<usize>::new());
}

#[test]
fn terms_are_reordered_union_then_intersection_then_exclusion() {
    assert_eq!(select("!db-primary,prod"), [0, 1, 2, 4, 5]);
    assert_eq!(select("&eu,web"), [0]);
    assert_eq!(select("!web:&eu:db"), [3]);
    assert_eq!(select("!eu,db,&prod,web"), [4, 1, 2]);
}

#[test]
fn only_intersection_or_exclusion_starts_from_all() {
    assert_eq!(select("!web"), [3, 4, 5, 6]);
    assert_eq!(select("&eu"), [0, 3, 5]);
    assert_eq!(select("&eu:!lb"), [0, 3]);
}

#[test]
fn globs_match_groups_and_hosts() {
    assert_eq!(select("web-0*"), [0, 1, 2]);
    assert_eq!(select("web-0[12]*"), [0, 1]);
    assert_eq!(select("web-0[!1]"), [1, 2]);
    assert_eq!(select("web-0[2-9]*"), [1, 2]);
    assert_eq!(select("db-pr?mary"), [3]);
    assert_eq!(select("*-1"), [5]);
    assert_eq!(select("e?"), [0, 3, 5]);
    assert_eq!(select("?b"), [3, 4, 5]);
    assert_eq!(select("prod:!web-0[!2]"), [1, 3, 4, 5]);
}

#[test]
fn globs_match_all_and_ungrouped_like_any_group() {
    assert_eq!(select("u*"), [6, 1, 2, 4]);
    assert_eq!(select("a*"), [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(select("~al"), [0, 1, 2, 3, 4, 5, 6]);
}

#[test]
fn regexes_are_anchored_at_the_start_only() {
    assert_eq!(select("~web-0[13]"), [0, 2]);
    assert_eq!(select("~(web|db)"), [0, 1, 2, 3, 4]);
    assert_eq!(select("~db-p"), [3]);
    assert_eq!(select("~.*-1$"), [5]);
    assert_eq!(select("prod:!~db"), [0, 1, 2, 5]);
    assert_eq!(select("&~web-0[12]"), [0, 1]);
    assert_eq!(
        select_error("~eb"),
        "pattern term \"~eb\" matches no host or group"
    );
}

#[test]
fn regexes_take_no_subscript() {
    assert_eq!(select("~web-0[3]"), [2]);
}

#[test]
fn subscripts() {
    assert_eq!(select("web[0]"), [0]);
    assert_eq!(select("web[2]"), [2]);
    assert_eq!(select("web[-1]"), [2]);
    assert_eq!(select("web[-3]"), [0]);
    assert_eq!(select("web[1:2]"), [1, 2]);
    assert_eq!(select("web[0:0]"), [0]);
    assert_eq!(select("web[1:]"), [1, 2]);
    assert_eq!(select("web[0:99]"), [0, 1, 2]);
    assert_eq!(select("all[-2]"), [5]);
    assert_eq!(select("prod[2:3]"), [2, 3]);
    assert_eq!(select("web*[1]"), [1]);
    assert_eq!(select("web-0*[1:]"), [1, 2]);
    assert_eq!(select("web[1],db[0]"), [1, 3]);
    assert_eq!(select("prod:!web[0:1]"), [2, 3, 4, 5]);
    assert_eq!(select("prod:&eu[1:]"), [3, 5]);
}

#[test]
fn a_trailing_bracket_of_digits_is_a_subscript_not_a_class() {
    assert_eq!(
        select_error("web-0[12]"),
        "pattern term \"web-0[12]\" matches no host or group"
    );
    assert_eq!(select("web-0[12]*"), [0, 1]);
}

#[test]
fn brackets_that_are_not_subscripts_are_glob_classes() {
    assert_eq!(select("lb-[1]*,web-0[a1]"), [5, 0]);
    assert_eq!(
        select_error("lb-[1]x*"),
        "pattern term \"lb-[1]x*\" matches no host or group"
    );
    assert_eq!(select("web-0[1:3x]"), [0, 2]);
    assert_eq!(select("[w]eb"), [0, 1, 2]);
    assert_eq!(
        select_error("web-[-1:2]"),
        "pattern term \"web-[-1:2]\" matches no host or group"
    );
}

#[test]
fn subscript_out_of_range() {
    let cases = [
        (
            "web[3]",
            "pattern term \"web[3]\" is out of range for 3 hosts",
        ),
        (
            "web[-4]",
            "pattern term \"web[-4]\" is out of range for 3 hosts",
        ),
        (
            "web[3:]",
            "pattern term \"web[3:]\" is out of range for 3 hosts",
        ),
        (
            "web[3:9]",
            "pattern term \"web[3:9]\" is out of range for 3 hosts",
        ),
        (
            "canary[0]",
            "pattern term \"canary[0]\" is out of range for 0 hosts",
        ),
        (
            "canary[0:]",
            "pattern term \"canary[0:]\" is out of range for 0 hosts",
        ),
        (
            "web:!db[-3]",
            "pattern term \"!db[-3]\" is out of range for 2 hosts",
        ),
        (
            "web:&db[9223372036854775807]",
            "pattern term \"&db[9223372036854775807]\" is out of range for 2 hosts",
        ),
        (
            "web[-9223372036854775808]",
            "pattern term \"web[-9223372036854775808]\" is out of range for 3 hosts",
        ),
    ];
    for (source, message) in cases {
        assert_eq!(select_error(source), message, "pattern {source:?}");
    }
}

#[test]
fn unmatched_terms_are_errors_whatever_their_prefix() {
    let cases = [
        ("wbe", "pattern term \"wbe\" matches no host or group"),
        ("web,wbe", "pattern term \"wbe\" matches no host or group"),
        ("web:&ue", "pattern term \"&ue\" matches no host or group"),
        (
            "prod:!db-primry",
            "pattern term \"!db-primry\" matches no host or group",
        ),
        (
            "!db-primry",
            "pattern term \"!db-primry\" matches no host or group",
        ),
        ("zz*", "pattern term \"zz*\" matches no host or group"),
        ("web:!zz?", "pattern term \"!zz?\" matches no host or group"),
        ("~zz", "pattern term \"~zz\" matches no host or group"),
        ("WEB", "pattern term \"WEB\" matches no host or group"),
        ("Web*", "pattern term \"Web*\" matches no host or group"),
        (
            "nope[0]",
            "pattern term \"nope[0]\" matches no host or group",
        ),
    ];
    for (source, message) in cases {
        assert_eq!(select_error(source), message, "pattern {source:?}");
    }
}

#[test]
fn a_union_term_naming_a_host_is_the_host_even_beside_a_group() {
    let fleet = Fleet {
        hosts: vec!["app".to_owned(), "app-1".to_owned()],
        groups: vec![("all", vec![0, 1]), ("app", vec![1])],
    };
    assert_eq!(parse("app").select(&fleet), Ok(vec![0]));
    // Other terms look at groups first, as Ansible does.
    assert_eq!(parse("all:&app").select(&fleet), Ok(vec![1]));
    assert_eq!(parse("all:!app").select(&fleet), Ok(vec![0]));
    assert_eq!(parse("app[0]").select(&fleet), Ok(vec![1]));
    assert_eq!(parse("app*").select(&fleet), Ok(vec![1, 0]));
}

#[test]
fn bad_group_member_indices_are_ignored() {
    let fleet = Fleet {
        hosts: vec!["a".to_owned()],
        groups: vec![("all", vec![0]), ("g", vec![0, 7])],
    };
    assert_eq!(parse("g").select(&fleet), Ok(vec![0]));
    assert_eq!(parse("g*").select(&fleet), Ok(vec![0]));
    assert_eq!(parse("!g").select(&fleet), Ok(vec![]));
}

#[test]
fn display_normalizes_separators_and_blanks() {
    let cases = [
        ("web: &eu: !web-01", "web,&eu,!web-01"),
        ("web db", "web,db"),
        (",web,,db,", "web,db"),
        ("web[1:3]:db", "web[1:3],db"),
        ("~web-0[1:3]", "~web-0[1:3]"),
        ("  all  ", "all"),
    ];
    for (source, shown) in cases {
        let pattern = parse(source);
        assert_eq!(pattern.to_string(), shown, "pattern {source:?}");
        assert_eq!(parse(shown), pattern, "pattern {source:?}");
    }
    assert_ne!(parse("web"), parse("db"));
}

#[test]
fn parse_errors() {
    let cases = [
        ("", "host pattern is empty"),
        (" , , ", "host pattern is empty"),
        (" : ", "host pattern is empty"),
        ("web[1", "unclosed \"[\" in host pattern \"web[1\""),
        ("web[1,db", "unclosed \"[\" in host pattern \"web[1,db\""),
        ("web,\tdb x", "pattern term \"db x\" contains whitespace"),
        ("!", "pattern term \"!\" has nothing after its prefix"),
        ("web:&", "pattern term \"&\" has nothing after its prefix"),
        ("!&web", "pattern term \"!&web\" has more than one prefix"),
        ("&!web", "pattern term \"&!web\" has more than one prefix"),
        ("!!web", "pattern term \"!!web\" has more than one prefix"),
        ("~", "pattern term \"~\" has an empty regex"),
        ("!~", "pattern term \"!~\" has an empty regex"),
        ("~web(", "pattern term \"~web(\" is not a valid regex"),
        ("&~[z-a]", "pattern term \"&~[z-a]\" is not a valid regex"),
        (
            "web[1-3]",
            "pattern term \"web[1-3]\" is ambiguous; write web[1:3] for a slice or ~web[1-3] for a regex",
        ),
        (
            "!web[2-]",
            "pattern term \"!web[2-]\" is ambiguous; write web[2:] for a slice or ~web[2-] for a regex",
        ),
        (
            "web[3:1]",
            "pattern term \"web[3:1]\" has a subscript start after its end",
        ),
        (
            "web[99999999999999999999]",
            "pattern term \"web[99999999999999999999]\" has a subscript too large",
        ),
        (
            "web[-99999999999999999999]",
            "pattern term \"web[-99999999999999999999]\" has a subscript too large",
        ),
        (
            "web[99999999999999999999:]",
            "pattern term \"web[99999999999999999999:]\" has a subscript too large",
        ),
        (
            "web[0:99999999999999999999]",
            "pattern term \"web[0:99999999999999999999]\" has a subscript too large",
        ),
    ];
    for (source, message) in cases {
        assert_eq!(parse_error(source), message, "pattern {source:?}");
    }
}

#[test]
fn glob_translation() {
    let cases = [
        ("web*", "(?s)^web.*$"),
        ("a**b", "(?s)^a.*b$"),
        ("?.x", "(?s)^.\\x{2e}x$"),
        ("[ab]", "(?s)^[ab]$"),
        ("[!ab]", "(?s)^[^ab]$"),
        ("[a-c]", "(?s)^[a-c]$"),
        ("[a-]", "(?s)^[a\\x{2d}]$"),
        ("[-a]", "(?s)^[\\x{2d}a]$"),
        ("[]]", "(?s)^[\\x{5d}]$"),
        ("[!]]", "(?s)^[^\\x{5d}]$"),
        ("[z-a]", "(?s)^[a&&b]$"),
        ("[!z-a]", "(?s)^.$"),
        ("[z-ax]", "(?s)^[x]$"),
        ("a[b", "(?s)^a\\x{5b}b$"),
        ("[!", "(?s)^\\x{5b}\\x{21}$"),
        ("é*", "(?s)^\\x{e9}.*$"),
    ];
    for (glob, regex) in cases {
        assert_eq!(glob_to_regex(glob), regex, "glob {glob:?}");
        assert!(Regex::new(regex).is_ok(), "glob {glob:?}");
    }
}

#[test]
fn glob_semantics() {
    let matches = |glob: &str, name: &str| {
        Regex::new(&glob_to_regex(glob)).is_ok_and(|regex| regex.is_match(name))
    };
    assert!(matches("web*", "web"));
    assert!(matches("web*", "web-01.example.com"));
    assert!(!matches("web*", "aweb"));
    assert!(matches("*.example.com", "a.example.com"));
    assert!(!matches("*.example.com", "a-example.com"));
    assert!(matches("w?b", "wxb"));
    assert!(!matches("w?b", "wb"));
    assert!(matches("[]]", "]"));
    assert!(matches("[a-]", "-"));
    assert!(!matches("[z-a]", "m"));
    assert!(matches("[!z-a]", "m"));
    assert!(matches("a[b", "a[b"));
    assert!(!matches("web", "WEB"));
}
