//! A YAML input file: its data, and where each node sits in the text.
//!
//! The data comes from `yaml_serde` (the serde YAML crate, so scalars resolve as users
//! expect). `yaml_serde` values carry no positions, so a second, event-only pass with
//! `saphyr-parser` records the line and column of every key and value by key path. Both
//! passes read the same text; when the position pass cannot place a node (an alias, a
//! non-string key) the nearest ancestor's position is used.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, Span};
use yaml_serde::Value;

use super::diagnostic::{Diagnostic, Position};
use super::keypath::KeyPath;

/// Where a mapping entry's key and value start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Placement {
    key: Position,
    value: Position,
}

/// A parsed YAML document with positions.
#[derive(Debug)]
pub struct Document {
    file: String,
    root: Value,
    placements: HashMap<KeyPath, Placement>,
}

impl Document {
    /// Parses `text`, naming it `file` in diagnostics.
    pub fn parse(file: &str, text: &str) -> Result<Document, Diagnostic> {
        let root: Value = yaml_serde::from_str(text).map_err(|e| syntax_error(file, &e))?;
        let root = match root {
            Value::Tagged(tagged) => tagged.value,
            other => other,
        };
        Ok(Document {
            file: file.to_owned(),
            root,
            placements: placements(text),
        })
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

enum Frame {
    Map {
        path: KeyPath,
        key: Option<(String, Position)>,
    },
    Seq {
        path: KeyPath,
        next: usize,
    },
    /// A complex (non-scalar) mapping key or an unplaceable subtree: ignored.
    Skip,
}

fn position(span: &Span) -> Position {
    Position {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

/// Records the key and value position of every node reachable by a key path.
fn placements(text: &str) -> HashMap<KeyPath, Placement> {
    let mut out = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut documents = 0;
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else { break };
        let pos = position(&span);
        let opens = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    break;
                }
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                continue;
            }
            Event::MappingStart(..) => Some(true),
            Event::SequenceStart(..) => Some(false),
            Event::Scalar(..) | Event::Alias(_) => None,
            _ => continue,
        };
        // Decide what this node is: a key, a value at a path, or something to skip.
        let target: Option<(KeyPath, Position)> = match stack.last_mut() {
            None => Some((KeyPath::root(), pos)),
            Some(Frame::Skip) => None,
            Some(Frame::Seq { path, next }) => {
                let child = path.index(*next);
                *next += 1;
                Some((child, pos))
            }
            Some(Frame::Map { path, key }) => match key.take() {
                Some((k, key_pos)) => Some((path.key(&k), key_pos)),
                None => {
                    if let Event::Scalar(text, ..) = &event {
                        *key = Some((text.to_string(), pos));
                    } else {
                        // A complex key: remember a placeholder so its value is skipped too.
                        *key = Some((String::from("\u{0}complex"), pos));
                        if opens.is_some() {
                            stack.push(Frame::Skip);
                        }
                    }
                    continue;
                }
            },
        };
        if let Some((path, key_pos)) = &target {
            out.insert(
                path.clone(),
                Placement {
                    key: *key_pos,
                    value: pos,
                },
            );
        }
        match (opens, target) {
            (Some(true), Some((path, _))) => stack.push(Frame::Map { path, key: None }),
            (Some(false), Some((path, _))) => stack.push(Frame::Seq { path, next: 0 }),
            (Some(_), None) => stack.push(Frame::Skip),
            (None, _) => {}
        }
    }
    out
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
        let err = Document::parse("bad.yaml", "a: [1, 2\nb: c\n").expect_err("fails");
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
    fn renders_file_line_column_path_message() {
        let doc = Document::parse("prod.yaml", TEXT).expect("parses");
        let path = KeyPath::root().key("all").key("vars").key("port");
        let d = doc.value_error(&path, "expected a port number, found \"ssh\"");
        assert_eq!(
            d.to_string(),
            "prod.yaml:3:11: all.vars.port: expected a port number, found \"ssh\""
        );
    }
}
