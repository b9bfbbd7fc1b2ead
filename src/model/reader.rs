//! Typed reading of a YAML [`Document`] that collects every problem instead of stopping.
//!
//! The inventory and spec loaders walk their document through a [`Reader`]; each accessor
//! returns `None` after recording a diagnostic, so one pass finds all problems.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

use yaml_serde::{Mapping, Value};

use super::diagnostic::Diagnostic;
use super::keypath::KeyPath;
use super::source::Document;

pub struct Reader<'d> {
    doc: &'d Document,
    /// Other documents whose values were read in (`group_vars/` files): a path that starts
    /// with [`KeyPath::in_file`] is placed in one of them.
    attached: Vec<Document>,
    problems: Vec<Diagnostic>,
}

impl<'d> Reader<'d> {
    /// A reader of `doc`, starting with the document's own problems (bad merge keys).
    pub fn new(doc: &'d Document) -> Reader<'d> {
        Reader {
            doc,
            attached: Vec::new(),
            problems: doc.problems().to_vec(),
        }
    }

    /// A reader of `doc` carrying problems already found (in `doc` or elsewhere).
    pub fn from_problems(doc: &'d Document, problems: Vec<Diagnostic>) -> Reader<'d> {
        Reader {
            doc,
            attached: Vec::new(),
            problems,
        }
    }

    pub fn doc(&self) -> &'d Document {
        self.doc
    }

    /// Attaches another document (its own problems recorded) and returns the root of its
    /// paths: problems at paths under it are placed in that document.
    pub fn attach(&mut self, doc: Document) -> KeyPath {
        self.problems.extend_from_slice(doc.problems());
        self.attached.push(doc);
        KeyPath::in_file(self.attached.len() - 1)
    }

    /// The document a path is in, and the path inside it.
    fn place(&self, path: &KeyPath) -> (&Document, KeyPath) {
        match path.split_file() {
            Some((index, rest)) if index < self.attached.len() => (&self.attached[index], rest),
            _ => (self.doc, path.clone()),
        }
    }

    /// Records a problem with the value at `path`.
    pub fn error(&mut self, path: &KeyPath, message: impl Into<String>) {
        let (doc, path) = self.place(path);
        let problem = doc.value_error(&path, message);
        self.problems.push(problem);
    }

    /// Records a problem with the key at `path`.
    pub fn key_error(&mut self, path: &KeyPath, message: impl Into<String>) {
        let (doc, path) = self.place(path);
        let problem = doc.key_error(&path, message);
        self.problems.push(problem);
    }

    /// Records a problem already placed.
    pub fn push(&mut self, problem: Diagnostic) {
        self.problems.push(problem);
    }

    pub fn into_problems(self) -> Vec<Diagnostic> {
        self.problems
    }

    /// The entries of a mapping, as string keys. Null reads as an empty mapping.
    pub fn mapping<'v>(
        &mut self,
        path: &KeyPath,
        value: &'v Value,
        what: &str,
    ) -> Vec<(String, &'v Value)> {
        match value {
            Value::Null => Vec::new(),
            Value::Mapping(map) => self.string_keys(path, map),
            Value::Tagged(tagged) => self.mapping(path, &tagged.value, what),
            other => {
                self.error(path, format!("expected {what}, found {}", describe(other)));
                Vec::new()
            }
        }
    }

    /// Like [`Reader::mapping`], and reports keys outside `allowed`, suggesting a close one.
    pub fn struct_mapping<'v>(
        &mut self,
        path: &KeyPath,
        value: &'v Value,
        what: &str,
        allowed: &[&str],
    ) -> Vec<(String, &'v Value)> {
        let entries = self.mapping(path, value, what);
        entries
            .into_iter()
            .filter(|(key, _)| {
                if allowed.contains(&key.as_str()) {
                    return true;
                }
                let message = match suggest(key, allowed) {
                    Some(close) => format!("unknown key `{key}` (did you mean `{close}`?)"),
                    None => format!(
                        "unknown key `{key}` (expected one of: {})",
                        allowed.join(", ")
                    ),
                };
                self.key_error(&path.key(key), message);
                false
            })
            .collect()
    }

    fn string_keys<'v>(&mut self, path: &KeyPath, map: &'v Mapping) -> Vec<(String, &'v Value)> {
        let mut out = Vec::with_capacity(map.len());
        for (key, value) in map {
            match scalar_text(key) {
                Some(text) => out.push((text, value)),
                None => self.error(
                    path,
                    format!("expected a plain key, found {}", describe(key)),
                ),
            }
        }
        out
    }

    /// A sequence's items. Null reads as empty.
    pub fn sequence<'v>(&mut self, path: &KeyPath, value: &'v Value, what: &str) -> &'v [Value] {
        match value {
            Value::Null => &[],
            Value::Sequence(items) => items,
            other => {
                self.error(path, format!("expected {what}, found {}", describe(other)));
                &[]
            }
        }
    }

    /// A scalar as text (strings, numbers and booleans alike).
    pub fn text(&mut self, path: &KeyPath, value: &Value, what: &str) -> Option<String> {
        match scalar_text(value) {
            Some(text) => Some(text),
            None => {
                self.error(path, format!("expected {what}, found {}", describe(value)));
                None
            }
        }
    }

    /// A scalar parsed with `FromStr`; a parse failure reads
    /// `expected WHAT, found "TEXT" (REASON)` unless the reason already says it all.
    pub fn parse<T>(&mut self, path: &KeyPath, value: &Value, what: &str) -> Option<T>
    where
        T: FromStr,
        T::Err: Display,
    {
        let text = self.text(path, value, what)?;
        match text.parse::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(path, format!("{e}"));
                None
            }
        }
    }
}

impl Reader<'_> {
    /// A whole number within `range`. Anything else (negative where the range is not, a
    /// fraction, text, too large) reads `expected WHAT from MIN to MAX, found VALUE`.
    pub fn integer<T>(
        &mut self,
        path: &KeyPath,
        value: &Value,
        what: &str,
        range: RangeInclusive<T>,
    ) -> Option<T>
    where
        T: FromStr + PartialOrd + Display,
    {
        let number = scalar_text(value)
            .and_then(|text| text.trim().parse::<T>().ok())
            .filter(|n| range.contains(n));
        if number.is_none() {
            self.error(
                path,
                format!(
                    "expected {what} from {} to {}, found {}",
                    range.start(),
                    range.end(),
                    describe(value)
                ),
            );
        }
        number
    }
}

/// The text of a scalar value, or `None` for collections and null.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Tagged(tagged) => scalar_text(&tagged.value),
        Value::Null | Value::Sequence(_) | Value::Mapping(_) => None,
    }
}

/// How a value reads in an error message: `"ssh"`, `42`, `a list`, `a mapping`, `null`.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::Tagged(tagged) => describe(&tagged.value),
    }
}

/// The closest candidate to a mistyped word, when one is close enough to be a typo.
pub fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(distance, c)| *distance <= 2.max(c.len() / 4) && *distance < c.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        let keys = ["parallel", "batches", "canary", "rollback"];
        assert_eq!(suggest("paralel", &keys), Some("parallel"));
        assert_eq!(suggest("batchs", &keys), Some("batches"));
        assert_eq!(suggest("colour", &keys), None);
    }

    #[test]
    fn describes_values_for_messages() {
        assert_eq!(describe(&Value::String("ssh".into())), "\"ssh\"");
        assert_eq!(describe(&Value::Null), "null");
        assert_eq!(describe(&Value::Sequence(vec![])), "a list");
    }

    #[test]
    fn numbers_out_of_range_say_the_range() {
        let doc = Document::parse(
            "s.yaml",
            "a: -1\nb: 1.5\nc: \"7\"\nd: many\ne: 70000\nf: [1]\ng: 3\n",
        )
        .expect("yaml");
        let mut reader = Reader::new(&doc);
        let mut got = Vec::new();
        for key in ["a", "b", "c", "d", "e", "f", "g"] {
            let value = doc.root().get(key).expect("key");
            let path = KeyPath::root().key(key);
            got.push(reader.integer::<u16>(&path, value, "a number", 1..=10));
        }
        assert_eq!(got, [None, None, Some(7), None, None, None, Some(3)]);
        let problems: Vec<String> = reader
            .into_problems()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            problems,
            [
                "s.yaml:1:4: a: expected a number from 1 to 10, found -1",
                "s.yaml:2:4: b: expected a number from 1 to 10, found 1.5",
                "s.yaml:4:4: d: expected a number from 1 to 10, found \"many\"",
                "s.yaml:5:4: e: expected a number from 1 to 10, found 70000",
                "s.yaml:6:4: f: expected a number from 1 to 10, found a list",
            ]
        );
    }

    #[test]
    fn collects_every_unknown_key() {
        let doc = Document::parse("s.yaml", "paralel: 3\nbatchs: [1]\nname: x\n").expect("yaml");
        let mut reader = Reader::new(&doc);
        let entries = reader.struct_mapping(
            &KeyPath::root(),
            doc.root(),
            "a mapping",
            &["name", "parallel", "batches"],
        );
        assert_eq!(entries.len(), 1);
        let problems: Vec<String> = reader
            .into_problems()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            problems,
            [
                "s.yaml:1:1: paralel: unknown key `paralel` (did you mean `parallel`?)",
                "s.yaml:2:1: batchs: unknown key `batchs` (did you mean `batches`?)",
            ]
        );
    }
}
