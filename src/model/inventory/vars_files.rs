//! `group_vars/` and `host_vars/` beside an inventory, as ansible-core's `host_group_vars`
//! vars plugin reads them: which files apply to a group or a host (its `find_vars_files`:
//! `NAME`, else `NAME.yml`, `NAME.yaml`, `NAME.json`, the first that exists; a directory
//! stands for its files), each file read (a vault refused, an empty or false document
//! skipped, anything else but a mapping refused), and one variable layer per group or host,
//! a later file's variable winning. The files arrive already read from disk ([`VarsDirs`],
//! made by `inputs`); this module only decides. Where the layers go in the precedence is
//! [`super::build`]'s job.

use std::collections::BTreeMap;
use std::sync::Arc;

use yaml_serde::Value;

use super::super::diagnostic::{Diagnostic, Position};
use super::super::keypath::KeyPath;
use super::super::reader::{Reader, describe};
use super::super::source::{Document, Scalars};
use super::{Layer, Var};

/// What ansible-core looks for after a group or host name, in this order.
const ENDINGS: [&str; 4] = ["", ".yml", ".yaml", ".json"];
/// How a vault-encrypted file starts (ansible-core's `is_encrypted`).
const VAULT_HEADER: &str = "$ANSIBLE_VAULT";

/// The `group_vars/` and `host_vars/` directories beside an inventory, each `None` when it
/// does not exist (or is not a directory, which Ansible skips too).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VarsDirs {
    pub group_vars: Option<VarsTree>,
    pub host_vars: Option<VarsTree>,
}

/// The entries of one vars directory, by name (every entry, hidden ones included: a group
/// may be named `.x`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VarsTree {
    entries: BTreeMap<String, VarsEntry>,
}

/// One entry of a vars directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VarsEntry {
    /// Anything but a directory: one vars file.
    File(VarsFile),
    /// A directory: the files Ansible reads in it, in its order.
    Dir(Vec<VarsFile>),
}

/// One vars file: its name in diagnostics and its text, or why it could not be read (a
/// problem only if the file applies to some group or host, as Ansible opens only those).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarsFile {
    pub name: String,
    pub text: Result<String, Diagnostic>,
}

impl VarsTree {
    pub fn insert(&mut self, name: String, entry: VarsEntry) {
        self.entries.insert(name, entry);
    }

    /// The files that apply to a group or host of that name, in the order they are read.
    fn lookup(&self, name: &str) -> &[VarsFile] {
        let found = ENDINGS
            .iter()
            .find_map(|ending| self.entries.get(&format!("{name}{ending}")));
        match found {
            None => &[],
            Some(VarsEntry::File(file)) => std::slice::from_ref(file),
            Some(VarsEntry::Dir(files)) => files,
        }
    }
}

impl VarsDirs {
    /// The layer of `group_vars/` for a group; a group name that would make Ansible read
    /// outside `group_vars/NAME` (with a `/`, or `.` or `..`) is refused at `at`.
    pub(super) fn group_layer(
        &self,
        reader: &mut Reader<'_>,
        name: &str,
        at: &KeyPath,
    ) -> Option<Arc<Layer>> {
        let tree = self.group_vars.as_ref()?;
        if name.contains('/') || name == "." || name == ".." {
            reader.key_error(
                at,
                format!(
                    "group name {name:?} cannot name a file in group_vars/ (Ansible would read a path outside group_vars/{name}): rename the group"
                ),
            );
            return None;
        }
        layer(reader, tree.lookup(name))
    }

    /// The layer of `host_vars/` for a host (host names never hold a `/`).
    pub(super) fn host_layer(&self, reader: &mut Reader<'_>, name: &str) -> Option<Arc<Layer>> {
        layer(reader, self.host_vars.as_ref()?.lookup(name))
    }
}

/// The variables of `files`, read in order into one layer (a later file's variable wins);
/// `None` when they define none. Every problem is recorded.
fn layer(reader: &mut Reader<'_>, files: &[VarsFile]) -> Option<Arc<Layer>> {
    let mut vars = BTreeMap::new();
    for file in files {
        vars.extend(read(reader, file));
    }
    (!vars.is_empty()).then(|| Arc::new(Layer(vars)))
}

/// One file's variables, its problems recorded.
fn read(reader: &mut Reader<'_>, file: &VarsFile) -> Vec<(String, Var)> {
    let whole = |message: String| Diagnostic {
        file: file.name.clone(),
        position: Some(Position { line: 1, column: 1 }),
        path: KeyPath::root(),
        message,
    };
    let text = match &file.text {
        Ok(text) => text,
        Err(problem) => {
            reader.push(problem.clone());
            return Vec::new();
        }
    };
    if text.starts_with(VAULT_HEADER) {
        reader.push(whole(
            "vault-encrypted vars files are not supported: ngfleet cannot decrypt them (keep the variables ngfleet needs in a plain file beside it)".to_owned(),
        ));
        return Vec::new();
    }
    let doc = match Document::parse_with(&file.name, text, Scalars::PyYaml) {
        Ok(doc) => doc,
        Err(problems) => {
            for problem in problems.iter() {
                reader.push(problem.clone());
            }
            return Vec::new();
        }
    };
    // Ansible skips a file whose data is false to Python (empty, `~`, `false`, `0`, `[]`).
    let root = doc.root().clone();
    if is_false(&root) {
        return Vec::new();
    }
    if !matches!(root, Value::Mapping(_)) {
        reader.push(whole(format!(
            "expected a mapping of variables, found {}",
            describe(&root)
        )));
        return Vec::new();
    }
    let base = reader.attach(doc);
    let entries = reader.mapping(&base, &root, "a mapping of variables");
    let mut vars = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let origin = base.key(&key);
        if has_vault(value) {
            reader.error(
                &origin,
                format!(
                    "`{key}` is vault-encrypted (`!vault`), which is not supported: ngfleet cannot decrypt it"
                ),
            );
            continue;
        }
        let value = value.clone();
        vars.push((key, Var { value, origin }));
    }
    vars
}

/// Whether Python reads the value as false.
fn is_false(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Sequence(items) => items.is_empty(),
        Value::Mapping(map) => map.is_empty(),
        Value::Tagged(tagged) => is_false(&tagged.value),
    }
}

/// Whether a `!vault` value is anywhere in `value`.
fn has_vault(value: &Value) -> bool {
    match value {
        Value::Tagged(tagged) => tagged.tag == "vault" || has_vault(&tagged.value),
        Value::Sequence(items) => items.iter().any(has_vault),
        Value::Mapping(map) => map.iter().any(|(k, v)| has_vault(k) || has_vault(v)),
        _ => false,
    }
}

#[cfg(test)]
#[path = "vars_files_tests.rs"]
mod tests;
