//! Reading the input files from disk: the inventory, the spec and the new binary. This is
//! the thin I/O edge in front of the pure model. Every file is bounded ([`file`]): a regular
//! file under a size limit, refused before it is read otherwise.

mod binary;
pub(crate) mod file;
mod inventory;
mod vars_dirs;

use std::path::{Path, PathBuf};

use crate::cli::InputArgs;
use crate::model::diagnostic::Diagnostics;
use crate::model::inventory::{Inventory, Limits};
use crate::model::source::decode;
use crate::model::spec::Spec;

pub use binary::{BinaryProblem, LocalBinary, MAX_BINARY_BYTES, binary, sha256_file};
pub use file::{FileError, FileKind, MAX_INPUT_BYTES, Size};

/// Why the inputs could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("failed to read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: FileError,
    },
    #[error("found {count} in the input:\n{list}", count = problems(.0.len()), list = .0)]
    Invalid(Diagnostics),
    #[error("failed to use binary {path}: {problem}")]
    Binary {
        path: PathBuf,
        problem: BinaryProblem,
    },
    #[error("failed to read inventory directory {path}: directories nest deeper than {limit}")]
    TooDeep { path: PathBuf, limit: usize },
    #[error("no binary to roll out: give --binary FILE or `binary.source` in the spec")]
    NoBinary,
}

/// The parsed inventory and spec.
#[derive(Debug)]
pub struct Inputs {
    pub inventory: Inventory,
    pub spec: Spec,
    /// Whether the spec came from a file, or is the defaults.
    pub spec_file: Option<PathBuf>,
}

/// Reads and validates both files, reporting the problems of both together.
pub fn load(args: &InputArgs) -> Result<Inputs, InputError> {
    let limits = Limits {
        max_hosts: args.max_hosts,
    };
    let inventory = inventory::read(&args.inventory, limits)?;
    let spec_bytes = args.playbook.as_deref().map(read).transpose()?;
    let spec = match (&args.playbook, spec_bytes) {
        (Some(path), Some(bytes)) => {
            let name = display(path);
            decode(&name, bytes)
                .map_err(Diagnostics::single)
                .and_then(|text| Spec::parse(&name, &text))
        }
        _ => Ok(Spec::defaults()),
    };
    match (inventory, spec) {
        (Ok(inventory), Ok(spec)) => Ok(Inputs {
            inventory,
            spec,
            spec_file: args.playbook.clone(),
        }),
        (Err(a), Err(b)) => Err(InputError::Invalid(a.merge(b))),
        (Err(a), Ok(_)) | (Ok(_), Err(a)) => Err(InputError::Invalid(a)),
    }
}

/// Reads and validates an inventory alone: a file, or a directory of inventory files.
pub fn load_inventory(path: &Path, limits: Limits) -> Result<Inventory, InputError> {
    inventory::read(path, limits)?.map_err(InputError::Invalid)
}

fn problems(n: usize) -> String {
    if n == 1 {
        "1 problem".to_owned()
    } else {
        format!("{n} problems")
    }
}

fn read(path: &Path) -> Result<Vec<u8>, InputError> {
    file::read_bounded(path, MAX_INPUT_BYTES).map_err(|source| InputError::Read {
        path: path.to_owned(),
        source,
    })
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// A `local` gate whose program is not on this controller cannot run: say so before the
/// rollout, not at host 37.
pub fn local_gate_problems(
    gates: &[crate::model::gate::GateDef],
    host: &crate::model::inventory::Host,
) -> Vec<String> {
    let mut out = Vec::new();
    for gate in gates {
        let crate::model::gate::Check::Local(t) = &gate.check else {
            continue;
        };
        let Ok(line) = t.render_shell(|v| host.template_var(v)) else {
            continue;
        };
        let Some(program) = shlex::split(&line).and_then(|w| w.into_iter().next()) else {
            continue;
        };
        if !program_exists(&program) {
            out.push(format!(
                "{}: program {program:?} of the local gate is not found on this controller",
                gate.origin
            ));
        }
    }
    out
}

/// Shell builtins and keywords a `local` gate may start with.
const SHELL_WORDS: &[&str] = &[
    "test", "[", "!", "true", "false", "echo", "printf", "cd", "exit", "if", "for", "while",
    "case", "command", "exec", "export", ":", "set", "read", "eval",
];

fn program_exists(program: &str) -> bool {
    if SHELL_WORDS.contains(&program) || program.contains('=') {
        return true;
    }
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
