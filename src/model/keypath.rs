//! Key paths into a YAML document (`all.children.web.hosts["web-01.example.com"].ansible_port`).

use std::fmt;

/// One step down a YAML tree.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    Key(String),
    Index(usize),
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
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(n) => write!(f, "[{n}]")?,
                Segment::Key(k) if needs_quotes(k) => write!(f, "[{k:?}]")?,
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
            }
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
