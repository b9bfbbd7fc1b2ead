//! Inventory values are data: every `{{ var }}` of a `command` or `local` gate reaches the shell
//! as exactly one quoted word, on the host and on the controller, whatever shell syntax the
//! value holds; and a failing gate is shown as expanded for the host.

use std::fs;
use std::path::{Path, PathBuf};

use ngfleet::gate::runner::SpecGates;
use ngfleet::model::inventory::{Host, Inventory};
use ngfleet::model::spec::Spec;

use crate::harness::Test;
use crate::lab::Lab;
use crate::upgrade::{assert_upgraded, rolled_back, run_host_with_gate};

fn gates(text: &str) -> SpecGates {
    let spec = Spec::parse("spec.yaml", text).unwrap_or_else(|e| panic!("{e}"));
    SpecGates::new(spec.pre, spec.gates, spec.soak.get())
}

/// Values that are shell syntax, each of which would create a marker file in `dir` if a shell
/// read it as code, and a directory of each value's name (so `test -d VALUE` passes only when
/// the value arrives as one literal word).
struct Nasty {
    dir: tempfile::TempDir,
    /// The host's inventory name.
    name: String,
    vars: Vec<(&'static str, String)>,
}

const MARKERS: &[&str] = &["semicolon", "subst", "backquote", "hostname"];

impl Nasty {
    fn new() -> Nasty {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path().display().to_string();
        let vars = vec![
            ("semi", format!("{d}/www; touch {d}/semicolon")),
            ("subst", format!("{d}/sub $(touch {d}/subst)")),
            ("backq", format!("{d}/bq `touch {d}/backquote`")),
            ("spaced", format!("{d}/my docs")),
        ];
        for (_, path) in &vars {
            fs::create_dir_all(path).expect("mkdir");
        }
        // A host named `lab-01;touch${IFS}DIR/hostname` is now refused by the inventory itself
        // (see validate::hostile_host_names_are_refused); `{{ inventory_hostname }}` is still
        // expanded here as one word, and the `hostname` marker must still never appear.
        let name = "lab-01".to_owned();
        let mut vars = vars;
        vars.push(("seen", format!("{d}/seen")));
        // The gates' working directory: a value split into words could create files here.
        vars.push(("scratch", format!("{d}/scratch")));
        fs::create_dir_all(dir.path().join("scratch")).expect("mkdir");
        Nasty { dir, name, vars }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn var(&self, name: &str) -> &str {
        self.vars
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .expect("var")
    }

    /// What the gates print: each value, then the host's name, in brackets.
    fn expected_seen(&self) -> String {
        ["semi", "subst", "backq", "spaced"]
            .iter()
            .map(|k| self.var(k))
            .chain([self.name.as_str()])
            .map(|v| format!("[{v}]"))
            .collect()
    }

    /// The markers that exist, and the files in the gates' working directory (none, unless a
    /// value ran as shell or was split into words).
    fn markers(&self) -> Vec<String> {
        let stray = fs::read_dir(self.path("scratch"))
            .expect("scratch")
            .map(|e| {
                format!(
                    "scratch/{}",
                    e.expect("entry").file_name().to_string_lossy()
                )
            });
        MARKERS
            .iter()
            .filter(|m| self.path(m).exists())
            .map(|m| m.to_string())
            .chain(stray)
            .collect()
    }

    /// lab-01 as the lab's inventory describes it, renamed to `self.name`, with `self.vars` and
    /// `extra`.
    fn host(&self, lab: &Lab, extra: &[(&str, String)]) -> Host {
        let text = fs::read_to_string(lab.inventory()).expect("inventory");
        let mut entry = format!("        {}:\n", yaml(&self.name));
        for (k, v) in self
            .vars
            .iter()
            .map(|(k, v)| (*k, v))
            .chain(extra.iter().map(|(k, v)| (*k, v)))
        {
            entry.push_str(&format!("          {k}: {}\n", yaml(v)));
        }
        let renamed = text.replace("        lab-01:\n", &entry);
        assert_ne!(renamed, text, "the lab inventory lists lab-01");
        let inventory =
            Inventory::parse("inventory.yaml", &renamed).unwrap_or_else(|e| panic!("{e}"));
        inventory.find(&self.name).expect("renamed host").clone()
    }
}

/// A YAML double-quoted scalar (a JSON string is one).
fn yaml(text: &str) -> String {
    serde_json::to_string(text).expect("json")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every value, and the host name, checked and printed by one gate line.
const LINE: &str = "cd {{ scratch }} && test -d {{ semi }} && test -d {{ subst }} && test -d {{ backq }} && test -d {{ spaced }} && printf '[%s]' {{ semi }} {{ subst }} {{ backq }} {{ spaced }} {{ inventory_hostname }} > {{ seen }}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_gate_values_reach_the_host_as_one_word_each_and_never_run() {
    let lab = lab!(1);
    let nasty = Nasty::new();
    let h = nasty.host(&lab, &[]);
    let spec = format!("gates:\n  - command: {{run: {}, retries: 1}}\n", yaml(LINE));
    let run = run_host_with_gate(&lab, &h, "nginx-new", &gates(&spec), &|_| {}).await;
    assert_upgraded(&run);
    assert_eq!(
        nasty.markers(),
        Vec::<String>::new(),
        "a value ran as shell on the host"
    );
    assert_eq!(read(&nasty.path("seen")), nasty.expected_seen());

    // A value that would pass as shell (`…; true`) fails as the literal path it is, and the
    // failure shows the command as the host's shell got it.
    let absent = format!("{}/absent; true", nasty.dir.path().display());
    let h = nasty.host(&lab, &[("absent", absent.clone())]);
    let spec = "gates:\n  - command: {run: \"test -d {{ absent }}\", retries: 1}\n";
    let run = run_host_with_gate(&lab, &h, "nginx-new2", &gates(spec), &|_| {}).await;
    let reason = rolled_back(&run);
    assert!(
        reason.contains(&format!("gate command test -d '{absent}': exit code 1")),
        "{reason}"
    );
    assert!(!reason.contains("{{"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_gate_values_reach_the_controller_shell_as_one_word_each_and_never_run() {
    let lab = lab!(1);
    let nasty = Nasty::new();
    let h = nasty.host(&lab, &[]);
    let spec = format!("gates:\n  - local: {{run: {}, retries: 1}}\n", yaml(LINE));
    let run = run_host_with_gate(&lab, &h, "nginx-new", &gates(&spec), &|_| {}).await;
    assert_upgraded(&run);
    assert_eq!(
        nasty.markers(),
        Vec::<String>::new(),
        "a value ran as shell on the controller"
    );
    assert_eq!(read(&nasty.path("seen")), nasty.expected_seen());

    // An HTTP gate that fails is shown with its URL as expanded for the host.
    let port = lab.hosts[0].http_port;
    let spec =
        "gates:\n  - http: {url: \"http://127.0.0.1:{{ lab_http_port }}/health\", retries: 1}\n";
    let run = run_host_with_gate(&lab, &h, "nginx-unhealthy-elf", &gates(spec), &|_| {}).await;
    let reason = rolled_back(&run);
    assert!(
        reason.contains(&format!(
            "gate http http://127.0.0.1:{port}/health: got 503 (expected 200) on 1/1 tries"
        )),
        "{reason}"
    );
}

#[test]
fn a_quoted_template_is_rejected_by_validate() {
    let out = Test::new()
        .file("inv.yaml", "all:\n  hosts:\n    a:\n      docroot: /var/www\n")
        .file(
            "spec.yaml",
            "gates:\n  - command: \"test -d \\\"{{ docroot }}\\\"\"\n  - local: {run: \"./check '{{ inventory_hostname }}'\"}\n",
        )
        .args(["validate", "-i", "inv.yaml", "-p", "spec.yaml"])
        .code(2)
        .run();
    assert!(
        out.stderr.contains(
            "spec.yaml:2:14: gates[0].command: `{{ docroot }}` is inside double quotes: drop the quotes, ngfleet quotes each expansion as one shell word"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "spec.yaml:3:18: gates[1].local.run: `{{ inventory_hostname }}` is inside single quotes: drop the quotes, ngfleet quotes each expansion as one shell word"
        ),
        "{}",
        out.stderr
    );
}
