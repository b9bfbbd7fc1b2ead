//! Reading the input files from disk: the inventory, the spec and the new binary. This is
//! the thin I/O edge in front of the pure model.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256 as Hasher};

use crate::cli::InputArgs;
use crate::model::diagnostic::Diagnostics;
use crate::model::inventory::{Inventory, Limits};
use crate::model::spec::{Sha256, Spec};

/// Why the inputs could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("failed to read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("found {count} in the input:\n{list}", count = problems(.0.len()), list = .0)]
    Invalid(Diagnostics),
    #[error("failed to use binary {path}: {problem}")]
    Binary {
        path: PathBuf,
        problem: BinaryProblem,
    },
    #[error("no binary to roll out: give --binary FILE or `binary.source` in the spec")]
    NoBinary,
}

/// What is wrong with the binary file.
#[derive(Debug, thiserror::Error)]
pub enum BinaryProblem {
    #[error("it does not exist")]
    Missing,
    #[error("it is not a regular file")]
    NotAFile,
    #[error("it is empty")]
    Empty,
    #[error("sha256 is {found}, the spec expects {expected}")]
    Checksum { expected: String, found: String },
    #[error("{0}")]
    Io(#[source] io::Error),
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
    let inventory_text = read(&args.inventory)?;
    let spec_text = args.playbook.as_deref().map(read).transpose()?;
    let limits = Limits {
        max_hosts: args.max_hosts,
    };
    let inventory = Inventory::parse_within(&display(&args.inventory), &inventory_text, limits);
    let spec = match (&args.playbook, spec_text) {
        (Some(path), Some(text)) => Spec::parse(&display(path), &text),
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

fn problems(n: usize) -> String {
    if n == 1 {
        "1 problem".to_owned()
    } else {
        format!("{n} problems")
    }
}

fn read(path: &Path) -> Result<String, InputError> {
    fs::read_to_string(path).map_err(|source| InputError::Read {
        path: path.to_owned(),
        source,
    })
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// A checked local binary, ready to upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalBinary {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

/// The binary to roll out: `--binary` wins over the spec's `binary.source`. It must be a
/// non-empty regular file and match the spec's sha256 when one is given.
pub fn binary(cli_binary: Option<&Path>, spec: &Spec) -> Result<LocalBinary, InputError> {
    let path = match (cli_binary, &spec.binary) {
        (Some(p), _) => p.to_owned(),
        (None, Some(b)) => b.source.clone(),
        (None, None) => return Err(InputError::NoBinary),
    };
    let expected = spec.binary.as_ref().and_then(|b| b.sha256.as_ref());
    check_binary(&path, expected).map_err(|problem| InputError::Binary { path, problem })
}

fn check_binary(path: &Path, expected: Option<&Sha256>) -> Result<LocalBinary, BinaryProblem> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(BinaryProblem::Missing),
        Err(e) => return Err(BinaryProblem::Io(e)),
    };
    if !meta.is_file() {
        return Err(BinaryProblem::NotAFile);
    }
    if meta.len() == 0 {
        return Err(BinaryProblem::Empty);
    }
    let sha256 = sha256_file(path).map_err(BinaryProblem::Io)?;
    if let Some(expected) = expected
        && expected.as_str() != sha256
    {
        return Err(BinaryProblem::Checksum {
            expected: expected.to_string(),
            found: sha256,
        });
    }
    Ok(LocalBinary {
        path: path.to_owned(),
        sha256,
        size: meta.len(),
    })
}

/// Lowercase hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
        let Ok(line) = t.render(|v| host.template_var(v)) else {
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
