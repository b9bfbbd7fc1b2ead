//! Where every node of a YAML text sits: one pass over `saphyr-parser`'s events.
//!
//! Paths here are *written* paths: the key path of a node where it is written in the text. An
//! alias (`*common`) is one node at its own path; [`Layout::target`] says which anchored node
//! it stands for, so a path through an alias can be followed into the anchor. The pass also
//! notes mappings whose `<<` key is quoted or tagged: that key is a plain string, not a merge,
//! as in PyYAML.

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

use super::diagnostic::Position;
use super::keypath::KeyPath;

/// Where a mapping entry's key and value start (for a sequence item or the root, both are the
/// node's own start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub key: Position,
    pub value: Position,
}

/// The written layout of a YAML text.
#[derive(Debug, Default)]
pub struct Layout {
    placements: HashMap<KeyPath, Placement>,
    /// Alias node -> the anchored node it stands for.
    aliases: HashMap<KeyPath, KeyPath>,
    /// Mappings whose `<<` key is quoted or tagged (a plain key, not a merge).
    literal_merge_keys: HashSet<KeyPath>,
    /// Plain, untagged values that YAML 1.1 (PyYAML) reads as booleans and YAML 1.2 as text
    /// (`yes`, `No`, `ON`, `off`...), and the boolean.
    yaml11_booleans: HashMap<KeyPath, bool>,
}

impl Layout {
    /// Where the node written at `path` sits, if it was placed.
    pub fn place(&self, path: &KeyPath) -> Option<Placement> {
        self.placements.get(path).copied()
    }

    /// Where the node written at `path` sits, or its nearest placed ancestor.
    pub fn nearest(&self, path: &KeyPath) -> Option<Placement> {
        let mut current = Some(path.clone());
        while let Some(p) = current {
            if let Some(found) = self.placements.get(&p) {
                return Some(*found);
            }
            current = p.parent();
        }
        None
    }

    /// The node `path` stands for: the anchored node when `path` is an alias, else `path`.
    pub fn target(&self, path: &KeyPath) -> KeyPath {
        self.aliases.get(path).unwrap_or(path).clone()
    }

    /// The boolean PyYAML reads in the plain value written at `path`, where YAML 1.2 reads
    /// text (`yes`, `off`...).
    pub fn yaml11_boolean(&self, path: &KeyPath) -> Option<bool> {
        self.yaml11_booleans.get(path).copied()
    }

    /// Whether the `<<` key of the mapping written at `path` is a plain string key.
    pub fn literal_merge_key(&self, path: &KeyPath) -> bool {
        self.literal_merge_keys.contains(path)
    }

    /// Reads the first document of `text`. Stops quietly at a syntax error: `yaml_serde` has
    /// already reported it (or accepted the text), so what was placed so far is kept.
    pub fn scan(text: &str) -> Layout {
        let mut scan = Scan::default();
        let mut documents = 0;
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            match event {
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        break;
                    }
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    scan.stack.pop();
                }
                Event::MappingStart(anchor, _) => scan.node(Node::Mapping, anchor, &span),
                Event::SequenceStart(anchor, _) => scan.node(Node::Sequence, anchor, &span),
                Event::Scalar(text, style, anchor, tag) => {
                    scan.node(Node::Scalar(&text, style, tag.as_deref()), anchor, &span);
                }
                Event::Alias(anchor) => scan.node(Node::Alias(anchor), 0, &span),
                _ => {}
            }
        }
        scan.layout
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

/// One node event, as the scan needs it.
enum Node<'e> {
    Mapping,
    Sequence,
    Scalar(&'e str, ScalarStyle, Option<&'e Tag>),
    Alias(usize),
}

impl Node<'_> {
    fn opens(&self) -> bool {
        matches!(self, Node::Mapping | Node::Sequence)
    }
}

#[derive(Default)]
struct Scan {
    layout: Layout,
    stack: Vec<Frame>,
    anchors: HashMap<usize, KeyPath>,
}

fn position(span: &Span) -> Position {
    Position {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

/// The boolean of a word PyYAML's YAML 1.1 resolver reads as one but YAML 1.2 does not.
fn yaml11_only_boolean(text: &str) -> Option<bool> {
    match text {
        "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// A `<<` key that PyYAML reads as a string, not a merge: quoted, or tagged other than `!!merge`.
fn literal_merge(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> bool {
    text == "<<"
        && (style != ScalarStyle::Plain
            || tag.is_some_and(|t| !(t.is_yaml_core_schema() && t.suffix == "merge")))
}

impl Scan {
    fn node(&mut self, node: Node<'_>, anchor: usize, span: &Span) {
        let pos = position(span);
        // Decide what this node is: a key, a value at a path, or something to skip.
        let target: Option<(KeyPath, Position)> = match self.stack.last_mut() {
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
                    if let Node::Scalar(text, style, tag) = node {
                        if literal_merge(text, style, tag) {
                            self.layout.literal_merge_keys.insert(path.clone());
                        }
                        *key = Some((text.to_owned(), pos));
                    } else {
                        // A complex key: remember a placeholder so its value is skipped too.
                        *key = Some((String::from("\u{0}complex"), pos));
                        if node.opens() {
                            self.stack.push(Frame::Skip);
                        }
                    }
                    return;
                }
            },
        };
        let Some((path, key_pos)) = target else {
            if node.opens() {
                self.stack.push(Frame::Skip);
            }
            return;
        };
        self.layout.placements.insert(
            path.clone(),
            Placement {
                key: key_pos,
                value: pos,
            },
        );
        if anchor != 0 {
            self.anchors.insert(anchor, path.clone());
        }
        match node {
            Node::Mapping => self.stack.push(Frame::Map { path, key: None }),
            Node::Sequence => self.stack.push(Frame::Seq { path, next: 0 }),
            Node::Alias(id) => {
                if let Some(anchored) = self.anchors.get(&id) {
                    self.layout.aliases.insert(path, anchored.clone());
                }
            }
            Node::Scalar(text, ScalarStyle::Plain, None) => {
                if let Some(b) = yaml11_only_boolean(text) {
                    self.layout.yaml11_booleans.insert(path, b);
                }
            }
            Node::Scalar(..) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: usize, column: usize) -> Position {
        Position { line, column }
    }

    #[test]
    fn aliases_point_at_their_anchor() {
        let layout = Layout::scan("a: &x {b: 1}\nc: *x\nd: [*x]\n");
        let a = KeyPath::root().key("a");
        assert_eq!(layout.target(&KeyPath::root().key("c")), a);
        assert_eq!(layout.target(&KeyPath::root().key("d").index(0)), a);
        assert_eq!(layout.target(&a), a);
        assert_eq!(layout.place(&a.key("b")).map(|p| p.value), Some(pos(1, 11)));
        assert_eq!(
            layout.place(&KeyPath::root().key("c")).map(|p| p.value),
            Some(pos(2, 4))
        );
    }

    #[test]
    fn quoted_or_tagged_merge_keys_are_literal() {
        let layout = Layout::scan(
            "a: {<<: {x: 1}}\nb: {'<<': {x: 1}}\nc: {\"<<\": 1}\nd: {!!str <<: 1}\ne: {!!merge <<: {x: 1}}\n",
        );
        let literal: Vec<bool> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|k| layout.literal_merge_key(&KeyPath::root().key(k)))
            .collect();
        assert_eq!(literal, [false, true, true, true, false]);
    }
}
