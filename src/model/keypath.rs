//! Key paths into a YAML document (`all.children.web.hosts["web-01.example.com"].ansible_port`).

use std::fmt;

/// One step down a YAML tree.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    Key(String),
    Index(usize),
    /// The root of another document, by its index in the reader's attached documents (a
    /// `group_vars/` file, say): the path goes on inside that document. Never displayed.
    File(usize),
}

/// A path from the document root to a node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyPath(Vec<Segment>);

impl KeyPath {
    pub fn root() -> KeyPath {
        KeyPath(Vec::new())
    }

    pub fn key(&self, key: &str) -> KeyPath {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        KeyPath(segments)
    }

    pub fn index(&self, index: usize) -> KeyPath {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        KeyPath(segments)
    }

    /// The root of another document: the `index`-th attached to the reader that reads it.
    pub fn in_file(index: usize) -> KeyPath {
        KeyPath(vec![Segment::File(index)])
    }

    /// The attached document a path starts in, and the path inside it.
    pub fn split_file(&self) -> Option<(usize, KeyPath)> {
        match self.0.split_first() {
            Some((Segment::File(index), rest)) => Some((*index, KeyPath(rest.to_vec()))),
            _ => None,
        }
    }

    pub fn parent(&self) -> Option<KeyPath> {
        let (_, rest) = self.0.split_last()?;
        Some(KeyPath(rest.to_vec()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn segments(&self) -> &[Segment] {
        &self.0
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for segment in &self.0 {
            match segment {
                Segment::File(_) => continue,
                Segment::Index(n) => write!(f, "[{n}]")?,
                Segment::Key(k) if needs_quotes(k) => write!(f, "[{k:?}]")?,
                Segment::Key(k) if first => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
            }
            first = false;
        }
        Ok(())
    }
}

fn needs_quotes(key: &str) -> bool {
    key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_plain_quoted_and_indexed_segments() {
        let path = KeyPath::root()
            .key("all")
            .key("hosts")
            .key("web-01.example.com")
            .key("ansible_port");
        assert_eq!(
            path.to_string(),
            r#"all.hosts["web-01.example.com"].ansible_port"#
        );
        assert_eq!(
            KeyPath::root()
                .key("windows")
                .index(2)
                .key("tz")
                .to_string(),
            "windows[2].tz"
        );
    }

    #[test]
    fn parent_walks_up() {
        let path = KeyPath::root().key("a").index(0);
        assert_eq!(path.parent(), Some(KeyPath::root().key("a")));
        assert_eq!(KeyPath::root().parent(), None);
    }
}
