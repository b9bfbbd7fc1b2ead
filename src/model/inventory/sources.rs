//! Several inventory files read as one, as Ansible reads a directory: each file (YAML or
//! INI, told by content) is walked in turn into the same drafts, so groups and hosts
//! accumulate and a later file's variables for the same group or host override an earlier
//! one's; `ungrouped` is reconciled once, at the end. Problems inside a file carry its name,
//! line and column; problems that only the whole set shows (a variable made invalid by
//! another file, a cycle across files) carry the source's name and the key path.

use yaml_serde::Value;

use super::super::diagnostic::Diagnostics;
use super::super::source::{Document, Scalars};
use super::vars_files::VarsDirs;
use super::walk::Walker;
use super::{Inventory, Limits, build, ini};

/// One inventory file: its name in diagnostics, and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

/// A file read, before it is walked.
pub(super) enum Parsed {
    Yaml(Document),
    Ini(Document, ini::Lines),
}

/// Reads `files`, in order, into one inventory named `name` (the directory).
pub(super) fn parse(
    name: &str,
    files: &[SourceFile],
    vars: &VarsDirs,
    limits: Limits,
) -> Result<Inventory, Diagnostics> {
    let mut docs = Vec::new();
    let mut ini_lines = Vec::new();
    let mut failed: Option<Diagnostics> = None;
    for file in files {
        match read(&file.name, &file.text) {
            Ok(Parsed::Yaml(doc)) => {
                docs.push(doc);
                ini_lines.push(None);
            }
            Ok(Parsed::Ini(doc, lines)) => {
                docs.push(doc);
                ini_lines.push(Some(lines));
            }
            Err(e) => {
                failed = Some(match failed.take() {
                    Some(f) => f.merge(e),
                    None => e,
                });
            }
        }
    }
    if let Some(problems) = failed {
        return Err(problems);
    }
    let whole = Document::placed(name, Value::Null, Default::default(), Vec::new());
    let mut walker = Walker::new(&whole, limits);
    for (doc, lines) in docs.iter().zip(ini_lines) {
        match lines {
            None => walker.walk_document(doc),
            Some(lines) => {
                walker.read_in(doc);
                ini::apply(&mut walker, lines);
            }
        }
    }
    walker.read_in(&whole);
    build::build(walker.finish(), vars)
}

/// A file's document, YAML or INI by content: a YAML mapping is a YAML inventory;
/// `[section]`s or host lines make an INI one.
pub(super) fn read(file: &str, text: &str) -> Result<Parsed, Diagnostics> {
    let yaml = Document::parse_with(file, text, Scalars::PyYaml);
    // A mapping or a list is YAML (a list is refused there); a scalar is host lines folded
    // into one.
    let is_mapping = |doc: &Document| {
        matches!(
            doc.root(),
            Value::Mapping(_) | Value::Sequence(_) | Value::Null
        )
    };
    match yaml {
        Ok(doc) if is_mapping(&doc) || !ini::looks_like_ini(text) => Ok(Parsed::Yaml(doc)),
        Err(e) if !ini::looks_like_ini(text) => Err(e),
        _ => {
            let (doc, lines) = ini::scan(file, text);
            Ok(Parsed::Ini(doc, lines))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> SourceFile {
        SourceFile {
            name: name.to_owned(),
            text: text.to_owned(),
        }
    }

    #[test]
    fn later_files_override_and_groups_accumulate() {
        let files = [
            file("a", "[web]\nw1 x=1 y=1\n[web:vars]\ng=1\nh=1\n"),
            file(
                "b.yml",
                "web:\n  hosts:\n    w1: {x: 2}\n    w2:\n  vars: {g: 2}\n  children: {eu: {hosts: {e1: }}}\n",
            ),
            file("c", "lone\n[eu:vars]\ng=3\n"),
        ];
        let inv = Inventory::parse_files("dir", &files, Limits::default()).expect("valid");
        let names: Vec<&str> = inv.hosts().iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["lone", "w1", "w2", "e1"]);
        let w1 = inv.find("w1").expect("w1");
        let text = |h: &crate::model::inventory::Host, v: &str| h.vars.text(v);
        assert_eq!(text(w1, "x").as_deref(), Some("2"));
        assert_eq!(text(w1, "y").as_deref(), Some("1"));
        assert_eq!(text(w1, "g").as_deref(), Some("2"));
        assert_eq!(text(w1, "h").as_deref(), Some("1"));
        // The child group's variable wins over the parent's, whichever file set it.
        assert_eq!(text(inv.find("e1").expect("e1"), "g").as_deref(), Some("3"));
        assert_eq!(inv.group("ungrouped").map(<[usize]>::len), Some(1));
    }

    #[test]
    fn problems_name_their_file_and_line() {
        let files = [
            file("a", "[web]\nw1\n"),
            file("b", "[web]\nw2 novalue\n"),
            file("c.yml", "web: {hostz: {}}\n"),
        ];
        let text = Inventory::parse_files("dir", &files, Limits::default())
            .expect_err("invalid")
            .to_string();
        assert!(text.contains("b:2:"), "{text}");
        assert!(text.contains("c.yml:1:"), "{text}");
    }
}
