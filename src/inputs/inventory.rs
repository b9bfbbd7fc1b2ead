//! Reading an inventory source from disk: one file, or a directory of files as Ansible reads
//! one. A directory's entries are taken in byte order (Python's `sorted`), skipping what
//! ansible-core skips by default: names starting with `.`, the `group_vars`, `host_vars` and
//! `vars_plugins` directories, and names ending in one of `INVENTORY_IGNORE_EXTS` (`.pyc`,
//! `.pyo`, `.swp`, `.bak`, `~`, `.rpm`, `.md`, `.txt`, `.rst`, `.orig`, `.cfg`, `.retry`).
//! Subdirectories are read the same way, in place. Each file is bounded and decoded on its
//! own ([`super::file`]); the model reads the (name, text) pairs, with the `group_vars/` and
//! `host_vars/` beside the file or inside the directory ([`super::vars_dirs`]).

use std::fs;
use std::path::{Path, PathBuf};

use crate::model::diagnostic::Diagnostics;
use crate::model::inventory::{Inventory, Limits, Source, SourceFile};
use crate::model::source::decode;

use super::file::{self, FileError, MAX_INPUT_BYTES};
use super::{InputError, display, vars_dirs};

/// What ansible-core skips in an inventory directory, by name.
const IGNORED_NAMES: &[&str] = &["group_vars", "host_vars", "vars_plugins"];
/// ansible-core's default `INVENTORY_IGNORE_EXTS`.
const IGNORED_ENDINGS: &[&str] = &[
    ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry",
];
/// How deep directories may nest (a symlink loop stops here).
pub const MAX_DEPTH: usize = 16;

/// Reads the inventory at `path`, a file or a directory.
pub fn read(path: &Path, limits: Limits) -> Result<Result<Inventory, Diagnostics>, InputError> {
    let name = display(path);
    let is_dir = fs::metadata(path).map(|m| m.is_dir()).unwrap_or(false);
    if !is_dir {
        let text = read_text(path)?;
        // Ansible's `os.path.dirname`; a bare file name's is empty, the current directory
        // (so its vars files are named `group_vars/…`).
        let vars = vars_dirs::read(path.parent().unwrap_or(Path::new("")))?;
        return Ok(text.and_then(|text| {
            let file = SourceFile { name, text };
            Inventory::read(Source::File(&file), &vars, limits)
        }));
    }
    let vars = vars_dirs::read(path)?;
    let mut paths = Vec::new();
    collect(path, 0, &mut paths)?;
    let mut files = Vec::new();
    let mut failed: Option<Diagnostics> = None;
    for path in paths {
        match read_text(&path)? {
            Ok(text) => files.push(SourceFile {
                name: display(&path),
                text,
            }),
            Err(e) => {
                failed = Some(match failed.take() {
                    Some(f) => f.merge(e),
                    None => e,
                });
            }
        }
    }
    Ok(match failed {
        Some(problems) => Err(problems),
        None => Inventory::read(
            Source::Directory {
                name: &name,
                files: &files,
            },
            &vars,
            limits,
        ),
    })
}

/// Whether ansible-core reads an entry of that name in an inventory directory.
pub fn is_read(name: &[u8]) -> bool {
    !(name.starts_with(b".")
        || IGNORED_NAMES.iter().any(|n| name == n.as_bytes())
        || IGNORED_ENDINGS.iter().any(|e| name.ends_with(e.as_bytes())))
}

/// The files of directory `dir`, in Ansible's order, subdirectories read in place.
fn collect(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
    if depth >= MAX_DEPTH {
        return Err(InputError::TooDeep {
            path: dir.to_owned(),
            limit: MAX_DEPTH,
        });
    }
    let listing = fs::read_dir(dir).map_err(|e| InputError::Read {
        path: dir.to_owned(),
        source: FileError::Io(e),
    })?;
    let mut names = Vec::new();
    for entry in listing {
        let entry = entry.map_err(|e| InputError::Read {
            path: dir.to_owned(),
            source: FileError::Io(e),
        })?;
        names.push(entry.file_name());
    }
    // Unix file names compare by their bytes, as Python sorts them.
    names.sort();
    for name in names {
        if !is_read(name.as_encoded_bytes()) {
            continue;
        }
        let path = dir.join(&name);
        if fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            collect(&path, depth + 1, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// A file's text, bounded; a file that is not UTF-8 is a problem of the input.
fn read_text(path: &Path) -> Result<Result<String, Diagnostics>, InputError> {
    let bytes = file::read_bounded(path, MAX_INPUT_BYTES).map_err(|source| InputError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(decode(&display(path), bytes).map_err(Diagnostics::single))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_vars_and_host_vars_beside_a_file_or_in_a_directory_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        let inv = p.join("hosts.yml");
        fs::write(
            &inv,
            "all:\n  children:\n    web:\n      hosts:\n        web-01:\n",
        )
        .expect("w");
        fs::create_dir_all(p.join("group_vars/web")).expect("mkdir");
        fs::create_dir_all(p.join("host_vars")).expect("mkdir");
        fs::write(
            p.join("group_vars/all.yml"),
            "ansible_user: deploy\nx: all\n",
        )
        .expect("w");
        fs::write(
            p.join("group_vars/web/a.yml"),
            "ansible_port: 2200\nx: web\n",
        )
        .expect("w");
        fs::write(
            p.join("host_vars/web-01.json"),
            "{\"ansible_host\": \"10.0.0.5\"}",
        )
        .expect("w");
        for source in [inv.as_path(), p] {
            let inv = read(source, Limits::default())
                .expect("read")
                .expect("valid");
            let host = inv.find("web-01").expect("web-01");
            assert_eq!(host.address(), "10.0.0.5");
            assert_eq!(host.connection.port.map(|p| p.get()), Some(2200));
            assert_eq!(host.connection.user.as_deref(), Some("deploy"));
            assert_eq!(host.vars.text("x").as_deref(), Some("web"));
        }
    }

    #[test]
    fn a_bad_vars_file_is_named_with_its_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        fs::write(p.join("hosts"), "[web]\nweb-01\n").expect("w");
        fs::create_dir_all(p.join("group_vars")).expect("mkdir");
        fs::write(p.join("group_vars/web.yml"), "x: 1\nansible_port: many\n").expect("w");
        let text = read(&p.join("hosts"), Limits::default())
            .expect("read")
            .expect_err("invalid")
            .to_string();
        let file = p.join("group_vars/web.yml").display().to_string();
        assert!(
            text.contains(&format!("{file}:2:15: ansible_port: ")),
            "{text}"
        );
    }

    #[test]
    fn skips_what_ansible_skips() {
        for name in ["a", "hosts.yml", "x.ini", "b.json", "prod", "bak"] {
            assert!(is_read(name.as_bytes()), "{name}");
        }
        let skipped = [
            ".hidden",
            "group_vars",
            "host_vars",
            "vars_plugins",
            "a~",
            "a.bak",
            "a.orig",
            "a.txt",
            "README.md",
            "ansible.cfg",
            "x.retry",
            "a.swp",
            "a.pyc",
            "a.rst",
        ];
        for name in skipped {
            assert!(!is_read(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn a_directory_is_its_files_in_byte_order_merged() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path();
        fs::write(p.join("b.yml"), "web:\n  hosts:\n    w1: {x: 2}\n").expect("w");
        fs::write(p.join("a"), "[web]\nw2 x=1\nw1 x=1\n[db]\nd1\n").expect("w");
        fs::write(p.join("B"), "[late]\nl1\n").expect("w");
        fs::write(p.join("notes.md"), "not: [an inventory\n").expect("w");
        fs::create_dir(p.join("vars_plugins")).expect("d");
        fs::write(p.join("vars_plugins/web"), "y: 1\n").expect("w");
        fs::create_dir(p.join("more")).expect("d");
        fs::write(p.join("more/c.ini"), "[db]\nd2\n").expect("w");
        let inv = read(p, Limits::default()).expect("read").expect("valid");
        let names: Vec<&str> = inv.hosts().iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["l1", "w2", "w1", "d1", "d2"]);
        let w1 = inv.find("w1").expect("w1");
        assert_eq!(w1.vars.text("x").as_deref(), Some("2"));
    }

    #[test]
    fn a_bad_file_is_named_with_its_line() {
        let dir = tempfile::tempdir().expect("tmp");
        fs::write(dir.path().join("a.ini"), "[web]\nw1\n").expect("w");
        fs::write(dir.path().join("b.ini"), "[web]\nw2 novalue\n").expect("w");
        let problems = read(dir.path(), Limits::default())
            .expect("read")
            .expect_err("invalid");
        let text = problems.to_string();
        assert!(text.contains("b.ini:2:"), "{text}");
        fs::write(dir.path().join("c.yml"), b"\xff\xfe").expect("w");
        let problems = read(dir.path(), Limits::default()).expect("read");
        assert!(problems.is_err());
    }
}
