//! Reading `group_vars/` and `host_vars/` from disk, where ansible-core's `host_group_vars`
//! vars plugin finds them: beside an inventory file, or inside an inventory directory (only
//! at its top: a subdirectory's `group_vars/` is read by neither). Every entry of each is
//! kept by name; an entry that is a directory stands for its files in Ansible's order (its
//! `_get_dir_vars_files`: sorted, names starting with `.` or ending in `~` skipped,
//! subdirectories without an extension read in place, files with no extension or `.yml`,
//! `.yaml`, `.json`). Each file is read bounded; one that cannot be read is a problem only if
//! it applies to a group or host, which the model decides ([`VarsDirs`]).

use std::fs;
use std::path::Path;

use crate::model::diagnostic::Diagnostic;
use crate::model::inventory::{VarsDirs, VarsEntry, VarsFile, VarsTree};
use crate::model::keypath::KeyPath;
use crate::model::source::decode;

use super::file::{self, FileError, MAX_INPUT_BYTES};
use super::inventory::MAX_DEPTH;
use super::{InputError, display};

/// The extensions Ansible reads in a vars directory (`YAML_FILENAME_EXTENSIONS`).
const EXTENSIONS: [&str; 3] = [".yml", ".yaml", ".json"];

/// The vars directories in `base` (an inventory file's directory, or the inventory directory).
pub fn read(base: &Path) -> Result<VarsDirs, InputError> {
    Ok(VarsDirs {
        group_vars: tree(&base.join("group_vars"))?,
        host_vars: tree(&base.join("host_vars"))?,
    })
}

/// Every entry of a vars directory; `None` when it is missing or not a directory (Ansible
/// skips it then).
fn tree(dir: &Path) -> Result<Option<VarsTree>, InputError> {
    if !fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(None);
    }
    let mut tree = VarsTree::default();
    for name in listing(dir)? {
        // A name that is not UTF-8 names no group or host.
        let Ok(text) = name.into_string() else {
            continue;
        };
        let path = dir.join(&text);
        // A dangling symlink does not exist for Ansible either.
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        let entry = if meta.is_dir() {
            let mut files = Vec::new();
            dir_files(&path, 1, &mut files)?;
            VarsEntry::Dir(files)
        } else {
            VarsEntry::File(read_file(&path))
        };
        tree.insert(text, entry);
    }
    Ok(Some(tree))
}

/// The files Ansible reads in a group's or host's directory, in its order.
fn dir_files(dir: &Path, depth: usize, out: &mut Vec<VarsFile>) -> Result<(), InputError> {
    if depth >= MAX_DEPTH {
        return Err(InputError::TooDeep {
            path: dir.to_owned(),
            limit: MAX_DEPTH,
        });
    }
    for name in listing(dir)? {
        let bytes = name.as_encoded_bytes();
        if bytes.starts_with(b".") || bytes.ends_with(b"~") {
            continue;
        }
        let path = dir.join(&name);
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        let ending = extension(bytes);
        if meta.is_dir() {
            if ending.is_none() {
                dir_files(&path, depth + 1, out)?;
            }
        } else if meta.is_file()
            && ending.is_none_or(|e| EXTENSIONS.iter().any(|x| x.as_bytes() == e))
        {
            out.push(read_file(&path));
        }
    }
    Ok(())
}

/// A name's extension as Python's `os.path.splitext` sees it (from the last `.`, unless the
/// name only starts with dots there).
fn extension(name: &[u8]) -> Option<&[u8]> {
    let dot = name.iter().rposition(|&b| b == b'.')?;
    name[..dot].iter().any(|&b| b != b'.').then(|| &name[dot..])
}

/// A directory's entry names, sorted by their bytes (as Python sorts them).
fn listing(dir: &Path) -> Result<Vec<std::ffi::OsString>, InputError> {
    let failed = |e| InputError::Read {
        path: dir.to_owned(),
        source: FileError::Io(e),
    };
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(failed)? {
        names.push(entry.map_err(failed)?.file_name());
    }
    names.sort();
    Ok(names)
}

/// A vars file's text, or why it could not be read (as a problem of the file).
fn read_file(path: &Path) -> VarsFile {
    let name = display(path);
    let text = match file::read_bounded(path, MAX_INPUT_BYTES) {
        Ok(bytes) => decode(&name, bytes),
        Err(e) => Err(Diagnostic {
            file: name.clone(),
            position: None,
            path: KeyPath::root(),
            message: format!("failed to read: {}", chain(&e)),
        }),
    };
    VarsFile { name, text }
}

/// An error and its sources, as one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_as_python_splits_them() {
        let ext =
            |n: &str| extension(n.as_bytes()).map(|e| String::from_utf8_lossy(e).into_owned());
        assert_eq!(ext("web.yml").as_deref(), Some(".yml"));
        assert_eq!(ext("a.b.json").as_deref(), Some(".json"));
        assert_eq!(ext("web").as_deref(), None);
        assert_eq!(ext("a.").as_deref(), Some("."));
        assert_eq!(ext("..a").as_deref(), None);
        assert_eq!(ext("sub.d").as_deref(), Some(".d"));
    }

    #[test]
    fn a_group_directory_is_its_files_in_ansibles_order() {
        let dir = tempfile::tempdir().expect("tmp");
        let gv = dir.path().join("group_vars");
        fs::create_dir_all(gv.join("web/sub")).expect("mkdir");
        fs::create_dir_all(gv.join("web/sub.d")).expect("mkdir");
        for name in [
            "b.yml",
            "a",
            ".hidden.yml",
            "c.txt",
            "d~",
            "e.json",
            "f.yaml",
            "sub/x",
        ] {
            fs::write(gv.join("web").join(name), "x: 1\n").expect("write");
        }
        fs::write(gv.join("web/sub.d/y"), "x: 1\n").expect("write");
        fs::write(gv.join("all.yml"), "x: 1\n").expect("write");
        let dirs = read(dir.path()).expect("read");
        assert_eq!(dirs.host_vars, None);
        let tree = dirs.group_vars.expect("group_vars");
        let mut expected = VarsTree::default();
        let file = |n: &str| VarsFile {
            name: display(&gv.join(n)),
            text: Ok("x: 1\n".to_owned()),
        };
        expected.insert("all.yml".to_owned(), VarsEntry::File(file("all.yml")));
        let web = [
            "web/a",
            "web/b.yml",
            "web/e.json",
            "web/f.yaml",
            "web/sub/x",
        ];
        expected.insert("web".to_owned(), VarsEntry::Dir(web.map(file).to_vec()));
        assert_eq!(tree, expected);
    }

    #[test]
    fn an_unreadable_file_is_kept_as_its_problem() {
        let dir = tempfile::tempdir().expect("tmp");
        let hv = dir.path().join("host_vars");
        fs::create_dir_all(hv.join("h1")).expect("mkdir");
        fs::write(hv.join("h2"), b"\xff").expect("write");
        let dirs = read(dir.path()).expect("read");
        let mut expected = VarsTree::default();
        expected.insert("h1".to_owned(), VarsEntry::Dir(Vec::new()));
        let name = display(&hv.join("h2"));
        let text = decode(&name, b"\xff".to_vec());
        assert!(text.is_err());
        expected.insert("h2".to_owned(), VarsEntry::File(VarsFile { name, text }));
        assert_eq!(dirs.host_vars, Some(expected));
    }
}
