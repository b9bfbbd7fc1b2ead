//! Problems found in an input file, each pointing at a file, line, column and key path.
//!
//! Validation never stops at the first problem: it collects [`Diagnostic`]s and hands the
//! whole list back as one [`Diagnostics`] error, so `ngfleet validate` can show everything
//! that is wrong in one run.

use std::fmt;

use super::keypath::KeyPath;

/// A 1-based line and column in a source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// One problem in one input file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as the user named it.
    pub file: String,
    /// Where in the file, when known.
    pub position: Option<Position>,
    /// The key path of the offending value (empty for whole-file problems).
    pub path: KeyPath,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(pos) = self.position {
            write!(f, ":{}:{}", pos.line, pos.column)?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in the inputs of one command; never empty.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// Wraps a list of problems; `None` when the list is empty.
    pub fn from_vec(mut list: Vec<Diagnostic>) -> Option<Diagnostics> {
        if list.is_empty() {
            return None;
        }
        list.sort_by(|a, b| (&a.file, a.position).cmp(&(&b.file, b.position)));
        list.dedup();
        Some(Diagnostics(list))
    }

    pub fn single(diagnostic: Diagnostic) -> Diagnostics {
        Diagnostics(vec![diagnostic])
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Joins two lists of problems (for reporting the inventory's and the spec's together).
    pub fn merge(self, other: Diagnostics) -> Diagnostics {
        let mut list = self.0;
        list.extend(other.0);
        Diagnostics::from_vec(list).unwrap_or(Diagnostics(Vec::new()))
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}
