//! A YAML input file: its data, and where each node sits in the text.
//!
//! The data comes from `yaml_serde` (the serde YAML crate, so scalars resolve as users
//! expect). `yaml_serde` values carry no positions, so a second, event-only pass with
//! `saphyr-parser` ([`super::layout`]) records the line and column of every key and value by
//! key path. Merge keys (`<<`) are then resolved as PyYAML does ([`super::merge`]), and every
//! node of the result is placed where it was written (a merged key, in its anchor). Both
//! passes read the same text; when the position pass cannot place a node (a non-string key)
//! the nearest ancestor's position is used.

use std::collections::HashMap;

use yaml_serde::Value;

use super::diagnostic::{Diagnostic, Diagnostics, Position};
use super::keypath::KeyPath;
use super::layout::{Layout, Placement};
use super::merge;

/// How plain scalars resolve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalars {
    /// YAML 1.2's core schema (`yaml_serde`'s), for ngfleet's own files.
    Yaml12,
    /// As Ansible's PyYAML loader reads inventories and vars files: YAML 1.2, plus the YAML
    /// 1.1 booleans (`yes`, `no`, `on`, `off` in their three cases) when plain and untagged.
    PyYaml,
}

/// A parsed YAML document with positions.
#[derive(Debug)]
pub struct Document {
    file: String,
    root: Value,
    placements: HashMap<KeyPath, Placement>,
    problems: Vec<Diagnostic>,
}

impl Document {
    /// Parses `text`, naming it `file` in diagnostics, and resolves its merge keys. A syntax
    /// error is the one problem; a bad merge key is kept in [`Document::problems`].
    pub fn parse(file: &str, text: &str) -> Result<Document, Diagnostics> {
        Document::parse_with(file, text, Scalars::Yaml12)
    }

    /// Like [`Document::parse`], plain scalars resolved as `scalars` says.
    pub fn parse_with(file: &str, text: &str, scalars: Scalars) -> Result<Document, Diagnostics> {
        let root: Value =
            yaml_serde::from_str(text).map_err(|e| Diagnostics::single(syntax_error(file, &e)))?;
        let mut root = match root {
            Value::Tagged(tagged) => tagged.value,
            other => other,
        };
        let layout = Layout::scan(text);
        if scalars == Scalars::PyYaml {
            yaml11_booleans(&mut root, KeyPath::root(), &layout);
        }
        let resolved = merge::resolve(&mut root, &layout);
        let problems = resolved
            .problems
            .into_iter()
            .map(|p| Diagnostic {
                file: file.to_owned(),
                position: p.position,
                path: p.path,
                message: p.error.to_string(),
            })
            .collect();
        Ok(Document {
            file: file.to_owned(),
            root,
            placements: resolved.placements,
            problems,
        })
    }

    /// A document of another format (an INI inventory) already read into `root`, with where
    /// each key path was written.
    pub fn placed(
        file: &str,
        root: Value,
        placements: HashMap<KeyPath, Placement>,
        problems: Vec<Diagnostic>,
    ) -> Document {
        Document {
            file: file.to_owned(),
            root,
            placements,
            problems,
        }
    }

    /// Problems found while reading the document itself (a `<<` that cannot merge); the
    /// document is still read without that merge, so every other problem is found too.
    pub fn problems(&self) -> &[Diagnostic] {
        &self.problems
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn root(&self) -> &Value {
        &self.root
    }

    /// Where the value at `path` starts (or its nearest placed ancestor).
    pub fn value_position(&self, path: &KeyPath) -> Option<Position> {
        self.lookup(path).map(|p| p.value)
    }

    /// Where the key of the entry at `path` starts (or its nearest placed ancestor's).
    pub fn key_position(&self, path: &KeyPath) -> Option<Position> {
        self.lookup(path).map(|p| p.key)
    }

    fn lookup(&self, path: &KeyPath) -> Option<Placement> {
        let mut current = Some(path.clone());
        while let Some(p) = current {
            if let Some(found) = self.placements.get(&p) {
                return Some(*found);
            }
            current = p.parent();
        }
        None
    }

    /// A problem with the value at `path`.
    pub fn value_error(&self, path: &KeyPath, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            position: self.value_position(path),
            path: path.clone(),
            message: message.into(),
        }
    }

    /// A problem with the key at `path` itself (an unknown key, say).
    pub fn key_error(&self, path: &KeyPath, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            position: self.key_position(path),
            path: path.clone(),
            message: message.into(),
        }
    }
}

/// Turns the plain `yes`/`no`/`on`/`off` values into booleans, following aliases (whose
/// values `yaml_serde` copied) to where they were written. `written` is the written path
/// of `value`.
fn yaml11_booleans(value: &mut Value, written: KeyPath, layout: &Layout) {
    match value {
        Value::String(_) => {
            if let Some(b) = layout.yaml11_boolean(&written) {
                *value = Value::Bool(b);
            }
        }
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                if let Value::String(key) = key {
                    yaml11_booleans(item, layout.target(&written.key(key)), layout);
                }
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                yaml11_booleans(item, layout.target(&written.index(i)), layout);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::Tagged(_) => {}
    }
}

/// The text of an input file's bytes; bytes that are not UTF-8 are a problem at the line and
/// column (in characters) of the first bad byte.
pub fn decode(file: &str, bytes: Vec<u8>) -> Result<String, Diagnostic> {
    let error = match String::from_utf8(bytes) {
        Ok(text) => return Ok(text),
        Err(e) => e,
    };
    let bytes = error.as_bytes();
    let valid = error.utf8_error().valid_up_to();
    let before = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let position = Position {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    };
    let utf16 = bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]);
    let hint = if utf16 {
        " (the file looks like UTF-16: save it as UTF-8)"
    } else {
        ""
    };
    Err(Diagnostic {
        file: file.to_owned(),
        position: Some(position),
        path: KeyPath::root(),
        message: format!(
            "not UTF-8 text: byte 0x{:02x} is not valid here{hint}",
            bytes[valid]
        ),
    })
}

fn syntax_error(file: &str, error: &yaml_serde::Error) -> Diagnostic {
    let location = error.location();
    let mut message = error.to_string();
    if let Some(loc) = &location {
        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_owned();
        }
    }
    Diagnostic {
        file: file.to_owned(),
        position: location.map(|l| Position {
            line: l.line(),
            column: l.column(),
        }),
        path: KeyPath::root(),
        message: format!("invalid YAML: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
all:
  vars:
    port: 22
  children:
    web:
      hosts:
        web-01.example.com:
          ansible_port: ssh
        web-02: null
windows:
  - {days: [sat], start: \"02:00\"}
";

    fn pos(line: usize, column: usize) -> Option<Position> {
        Some(Position { line, column })
    }

    #[test]
    fn places_keys_and_values_by_path() {
        let doc = Document::parse("inv.yaml", TEXT).expect("parses");
        let port = KeyPath::root()
            .key("all")
            .key("children")
            .key("web")
            .key("hosts")
            .key("web-01.example.com")
            .key("ansible_port");
        assert_eq!(doc.key_position(&port), pos(8, 11));
        assert_eq!(doc.value_position(&port), pos(8, 25));
        let start = KeyPath::root().key("windows").index(0).key("start");
        assert_eq!(doc.value_position(&start), pos(11, 26));
        assert_eq!(
            doc.key_position(&KeyPath::root().key("windows")),
            pos(10, 1)
        );
    }

    #[test]
    fn unknown_paths_fall_back_to_the_nearest_ancestor() {
        let doc = Document::parse("inv.yaml", TEXT).expect("parses");
        let missing = KeyPath::root().key("all").key("vars").key("nope");
        assert_eq!(doc.value_position(&missing), pos(3, 5));
    }

    #[test]
    fn syntax_errors_point_at_the_place() {
        let errs = Document::parse("bad.yaml", "a: [1, 2\nb: c\n").expect_err("fails");
        assert_eq!(errs.len(), 1);
        let err = errs.iter().next().expect("one");
        assert_eq!(err.file, "bad.yaml");
        assert!(err.position.is_some(), "{err}");
        assert!(err.message.starts_with("invalid YAML: "), "{err}");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_placed() {
        assert_eq!(
            decode("a.yaml", b"a: 1\n".to_vec()).as_deref(),
            Ok("a: 1\n")
        );
        let err = decode("a.yaml", b"all:\n  h\xc3\xa9: x\xff\n".to_vec()).expect_err("bad");
        assert_eq!(
            err.to_string(),
            "a.yaml:2:8: not UTF-8 text: byte 0xff is not valid here"
        );
        let err = decode("a.yaml", b"\xff\xfea\0".to_vec()).expect_err("utf-16");
        assert_eq!(
            err.to_string(),
            "a.yaml:1:1: not UTF-8 text: byte 0xff is not valid here (the file looks like UTF-16: save it as UTF-8)"
        );
        // A sequence cut short at the end of the file.
        let err = decode("a.yaml", b"a: \xe2\x82".to_vec()).expect_err("cut");
        assert_eq!(err.position, Some(Position { line: 1, column: 4 }));
    }

    #[test]
    fn merged_keys_are_placed_at_their_anchor_and_bad_merges_kept_as_problems() {
        let text = "base: &base {port: 22}\nh:\n  <<: *base\n  user: x\nbad: {<<: 1, kept: yes}\n";
        let doc = Document::parse("m.yaml", text).expect("parses");
        let h = KeyPath::root().key("h");
        assert_eq!(doc.root()["h"]["port"], 22);
        assert_eq!(doc.value_position(&h.key("port")), pos(1, 20));
        assert_eq!(doc.key_position(&h.key("port")), pos(1, 14));
        assert_eq!(doc.value_position(&h.key("user")), pos(4, 9));
        assert_eq!(doc.root()["bad"]["kept"], "yes", "the rest is still read");
        let problems: Vec<String> = doc.problems().iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [
                "m.yaml:5:11: bad[\"<<\"]: a merge key (`<<`) takes a mapping, an alias of a mapping, or a list of those; found 1"
            ]
        );
    }

    #[test]
    fn renders_file_line_column_path_message() {
        let doc = Document::parse("prod.yaml", TEXT).expect("parses");
        let path = KeyPath::root().key("all").key("vars").key("port");
        let d = doc.value_error(&path, "expected a port number, found \"ssh\"");
        assert_eq!(
            d.to_string(),
            "prod.yaml:3:11: all.vars.port: expected a port number, found \"ssh\""
        );
    }

    #[test]
    fn pyyaml_scalars_add_the_yaml11_booleans_where_plain() {
        let text = "a: yes\nb: 'yes'\nc: !!str on\nd: [No, OFF, On]\ne: &x {f: yes}\ng: *x\nh: {<<: *x}\ni: yesno\n";
        let doc = Document::parse_with("v.yaml", text, Scalars::PyYaml).expect("parses");
        let json = serde_json::to_value(doc.root()).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "a": true, "b": "yes", "c": "on", "d": [false, false, true],
                "e": {"f": true}, "g": {"f": true}, "h": {"f": true}, "i": "yesno"
            })
        );
        let plain = Document::parse("v.yaml", text).expect("parses");
        assert_eq!(plain.root()["a"], Value::String("yes".to_owned()));
    }
}
