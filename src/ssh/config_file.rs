//! Reading ssh_config files from disk: `~/.ssh/config` then `/etc/ssh/ssh_config` (each
//! only if it exists), or one file named by the operator (which must exist), with every
//! `Include` followed where it stands (`~` expanded, relative paths under `~/.ssh` or
//! `/etc/ssh` as OpenSSH resolves them, globs in sorted order, at most 16 deep). Problems
//! come back as diagnostics naming the file and line.

use std::path::{Path, PathBuf};

use crate::inputs::file::{FileError, read_bounded};
use crate::model::diagnostic::{Diagnostic, Diagnostics};
use crate::model::keypath::KeyPath;
use crate::model::ssh_config::{self, Config, File, Item, Scope};

/// The largest config file read (OpenSSH has no limit; a config is a few KiB).
const MAX_CONFIG_BYTES: u64 = 4 << 20;
/// OpenSSH's `READCONF_MAX_DEPTH`.
const MAX_INCLUDE_DEPTH: usize = 16;
/// The system-wide client config.
pub const SYSTEM_CONFIG: &str = "/etc/ssh/ssh_config";

/// Which config files a host is resolved against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ConfigChoice {
    /// `~/.ssh/config` then `/etc/ssh/ssh_config`.
    Defaults,
    /// One file (`--ssh-config`, `ngfleet_ssh_config`), read as a user's config, as
    /// `ssh -F FILE` does; the system file is not read.
    File(PathBuf),
}

/// Reads the files of `choice`; `home` is the controller's `$HOME`.
pub fn load(choice: &ConfigChoice, home: Option<&Path>) -> Result<Config, Diagnostics> {
    let mut files = Vec::new();
    match choice {
        ConfigChoice::Defaults => {
            let user = home.map(|h| h.join(".ssh/config"));
            for (path, scope) in user
                .into_iter()
                .map(|p| (p, Scope::User))
                .chain([(PathBuf::from(SYSTEM_CONFIG), Scope::System)])
            {
                if path.exists() {
                    files.push(read(&path, scope, home, 0)?);
                }
            }
        }
        ConfigChoice::File(path) => files.push(read(path, Scope::User, home, 0)?),
    }
    Ok(Config { files })
}

fn whole_file(path: &Path, message: String) -> Diagnostics {
    Diagnostics::single(Diagnostic {
        file: path.display().to_string(),
        position: None,
        path: KeyPath::root(),
        message,
    })
}

fn read(path: &Path, scope: Scope, home: Option<&Path>, depth: usize) -> Result<File, Diagnostics> {
    if path == Path::new("/dev/null") {
        // `ssh -F /dev/null`: no config at all.
        return Ok(File {
            path: "/dev/null".into(),
            items: Vec::new(),
        });
    }
    let bytes = read_bounded(path, MAX_CONFIG_BYTES).map_err(|e: FileError| {
        whole_file(path, format!("failed to read the ssh_config file: {e}"))
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        whole_file(
            path,
            format!(
                "failed to read the ssh_config file: not UTF-8 at byte {}",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    let shown = path.display().to_string();
    let mut file = ssh_config::parse(&shown, &text).map_err(|list| {
        Diagnostics::from_vec(list).unwrap_or_else(|| whole_file(path, String::new()))
    })?;
    for item in &mut file.items {
        let Item::Include {
            patterns,
            files,
            at,
        } = item
        else {
            continue;
        };
        if depth + 1 > MAX_INCLUDE_DEPTH {
            return Err(Diagnostics::single(ssh_config::problem(
                at,
                &format!("Include: nested more than {MAX_INCLUDE_DEPTH} deep"),
            )));
        }
        for pattern in patterns.iter() {
            let full = include_path(pattern, scope, home);
            let options = glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: true,
                require_literal_leading_dot: true,
            };
            let matches = glob::glob_with(&full, options).map_err(|e| {
                Diagnostics::single(ssh_config::problem(
                    at,
                    &format!("Include: bad pattern {pattern:?}: {e}"),
                ))
            })?;
            let mut found: Vec<PathBuf> = matches.filter_map(Result::ok).collect();
            found.sort();
            for included in found {
                files.push(read(&included, scope, home, depth + 1)?);
            }
        }
    }
    Ok(file)
}

/// Where an `Include` pattern points: `~` is the home directory; a relative path is under
/// `~/.ssh` (a user's config) or `/etc/ssh` (the system's).
fn include_path(pattern: &str, scope: Scope, home: Option<&Path>) -> String {
    let home_text = home.map(|h| h.display().to_string()).unwrap_or_default();
    if let Some(rest) = pattern.strip_prefix("~/") {
        return format!("{home_text}/{rest}");
    }
    if pattern.starts_with('/') {
        return pattern.to_owned();
    }
    match scope {
        Scope::User => format!("{home_text}/.ssh/{pattern}"),
        Scope::System => format!("/etc/ssh/{pattern}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_are_followed_in_order_relative_to_dot_ssh() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let home = dir.path();
        let ssh = home.join(".ssh");
        let conf_d = ssh.join("conf.d");
        assert!(std::fs::create_dir_all(&conf_d).is_ok());
        let write = |p: PathBuf, t: &str| assert!(std::fs::write(p, t).is_ok());
        write(conf_d.join("b.conf"), "Host b\n  Port 2\n");
        write(conf_d.join("a.conf"), "Host a\n  Port 1\n");
        write(conf_d.join(".hidden.conf"), "Host a\n  Port 9\n");
        let main = home.join("main");
        write(main.clone(), "Include conf.d/*.conf\n");
        let config = load(&ConfigChoice::File(main), Some(home)).unwrap_or_else(|e| panic!("{e}"));
        let Item::Include { files, .. } = &config.files[0].items[0] else {
            panic!("{config:?}");
        };
        let names: Vec<String> = files.iter().map(|f| f.path.to_string()).collect();
        assert_eq!(
            names,
            [
                conf_d.join("a.conf").display().to_string(),
                conf_d.join("b.conf").display().to_string()
            ]
        );
        // A loop is stopped with the line that includes too deep.
        let looping = home.join("loop");
        write(looping.clone(), &format!("Include {}\n", looping.display()));
        let err = load(&ConfigChoice::File(looping.clone()), Some(home))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains(&format!(
                "{}:1:1: Include: nested more than 16 deep",
                looping.display()
            )),
            "{err}"
        );
        // A named file must exist.
        let err = load(&ConfigChoice::File(home.join("nope")), Some(home))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("nope: failed to read the ssh_config file"),
            "{err}"
        );
    }
}
