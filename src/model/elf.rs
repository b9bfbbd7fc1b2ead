//! What the first bytes of a binary say: ELF or not, its class (32/64-bit) and the machine it
//! is for. Pure: the caller reads the bytes (`inputs/binary.rs`), this judges them. The machine is
//! checked against each host's `uname -m` before anything is uploaded (`host/decide.rs`).

use std::fmt;

/// How many bytes of a file [`ElfHeader::parse`] needs: through `e_machine`.
pub const HEADER_BYTES: usize = 20;

/// 32-bit or 64-bit (`EI_CLASS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfClass {
    Elf32,
    Elf64,
}

impl fmt::Display for ElfClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ElfClass::Elf32 => "32-bit",
            ElfClass::Elf64 => "64-bit",
        })
    }
}

/// The parts of an ELF header the controller judges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElfHeader {
    pub class: ElfClass,
    /// `e_machine`: 62 for x86-64, 183 for AArch64, … (see [`machine_name`]).
    pub machine: u16,
}

/// Why the first bytes are not those of an executable ELF file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    #[error("it is not an ELF executable (it starts with {0})")]
    NotElf(String),
    #[error("its ELF header is cut short ({0} bytes)")]
    Truncated(usize),
    #[error("its ELF class byte is {0}, neither 32-bit (1) nor 64-bit (2)")]
    Class(u8),
    #[error("its ELF data encoding byte is {0}, neither little-endian (1) nor big-endian (2)")]
    Encoding(u8),
    #[error("it is an ELF {0}, not an executable")]
    NotExecutable(&'static str),
}

impl ElfHeader {
    /// Judges the first bytes of a file (at least [`HEADER_BYTES`] when there are that many).
    pub fn parse(bytes: &[u8]) -> Result<ElfHeader, ElfError> {
        if !bytes.starts_with(b"\x7fELF") {
            return Err(ElfError::NotElf(describe_start(bytes)));
        }
        if bytes.len() < HEADER_BYTES {
            return Err(ElfError::Truncated(bytes.len()));
        }
        let class = match bytes[4] {
            1 => ElfClass::Elf32,
            2 => ElfClass::Elf64,
            other => return Err(ElfError::Class(other)),
        };
        let half = |at: usize| -> Result<u16, ElfError> {
            let pair = [bytes[at], bytes[at + 1]];
            match bytes[5] {
                1 => Ok(u16::from_le_bytes(pair)),
                2 => Ok(u16::from_be_bytes(pair)),
                other => Err(ElfError::Encoding(other)),
            }
        };
        match half(16)? {
            2 | 3 => {}
            1 => return Err(ElfError::NotExecutable("relocatable object")),
            4 => return Err(ElfError::NotExecutable("core dump")),
            _ => return Err(ElfError::NotExecutable("file of unknown type")),
        }
        Ok(ElfHeader {
            class,
            machine: half(18)?,
        })
    }
}

impl fmt::Display for ElfHeader {
    /// `ELF 64-bit, x86-64` (or `ELF 32-bit, machine 4242` for a machine without a name here).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ELF {}, ", self.class)?;
        match machine_name(self.machine) {
            Some(name) => f.write_str(name),
            None => write!(f, "machine {}", self.machine),
        }
    }
}

/// A person's name for an ELF machine number.
pub fn machine_name(machine: u16) -> Option<&'static str> {
    Some(match machine {
        3 => "i386",
        8 => "MIPS",
        20 => "PowerPC",
        21 => "PowerPC64",
        22 => "S/390",
        40 => "ARM",
        62 => "x86-64",
        183 => "AArch64",
        243 => "RISC-V",
        258 => "LoongArch",
        _ => return None,
    })
}

/// The ELF machine number of binaries for a `uname -m`, when known.
pub fn machine_for_uname(uname: &str) -> Option<u16> {
    Some(match uname {
        "x86_64" | "amd64" => 62,
        "aarch64" | "arm64" => 183,
        "i386" | "i486" | "i586" | "i686" => 3,
        "armv6l" | "armv7l" | "armhf" => 40,
        "riscv64" => 243,
        "ppc64le" | "ppc64" => 21,
        "s390x" => 22,
        "loongarch64" => 258,
        _ => return None,
    })
}

/// How a file that is not ELF starts, for the error: the text of a script's first line
/// (`"#!/bin/sh"`), or the first bytes in hex.
fn describe_start(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "nothing: it is empty".into();
    }
    let head = &bytes[..bytes.len().min(16)];
    let line = head.split(|&b| b == b'\n').next().unwrap_or(head);
    let printable = !line.is_empty() && line.iter().all(|b| b.is_ascii_graphic() || *b == b' ');
    if printable {
        format!("{:?}", String::from_utf8_lossy(line))
    } else {
        let hex: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("the bytes {}", hex.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(class: u8, data: u8, kind: u16, machine: u16) -> Vec<u8> {
        let mut h = b"\x7fELF".to_vec();
        h.extend([class, data, 1, 0]);
        h.extend([0; 8]);
        let put = |v: u16| {
            if data == 2 {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        h.extend(put(kind));
        h.extend(put(machine));
        h.extend([0; 44]);
        h
    }

    #[test]
    fn reads_class_and_machine() {
        let x86 = ElfHeader::parse(&header(2, 1, 3, 62)).expect("elf");
        assert_eq!(
            x86,
            ElfHeader {
                class: ElfClass::Elf64,
                machine: 62
            }
        );
        assert_eq!(x86.to_string(), "ELF 64-bit, x86-64");
        let arm = ElfHeader::parse(&header(1, 1, 2, 40)).expect("elf");
        assert_eq!(arm.to_string(), "ELF 32-bit, ARM");
        let s390 = ElfHeader::parse(&header(2, 2, 2, 22)).expect("big-endian");
        assert_eq!(s390.to_string(), "ELF 64-bit, S/390");
        let odd = ElfHeader::parse(&header(2, 1, 3, 4242)).expect("elf");
        assert_eq!(odd.to_string(), "ELF 64-bit, machine 4242");
    }

    #[test]
    fn refuses_what_is_not_an_executable_elf() {
        let cases: [(Vec<u8>, &str); 7] = [
            (
                b"#!/bin/sh\necho hi\n".to_vec(),
                "it is not an ELF executable (it starts with \"#!/bin/sh\")",
            ),
            (
                b"\0\x01\x02\x03garbage".to_vec(),
                "it is not an ELF executable (it starts with the bytes 00 01 02 03 67 61 72 62)",
            ),
            (
                Vec::new(),
                "it is not an ELF executable (it starts with nothing: it is empty)",
            ),
            (
                b"\x7fELF\x02".to_vec(),
                "its ELF header is cut short (5 bytes)",
            ),
            (
                header(3, 1, 3, 62),
                "its ELF class byte is 3, neither 32-bit (1) nor 64-bit (2)",
            ),
            (
                header(2, 1, 1, 62),
                "it is an ELF relocatable object, not an executable",
            ),
            (
                header(2, 1, 4, 62),
                "it is an ELF core dump, not an executable",
            ),
        ];
        for (bytes, message) in cases {
            assert_eq!(
                ElfHeader::parse(&bytes).map_err(|e| e.to_string()),
                Err(message.to_owned()),
                "{bytes:?}"
            );
        }
        let mut bad_data = header(2, 1, 3, 62);
        bad_data[5] = 9;
        assert_eq!(ElfHeader::parse(&bad_data), Err(ElfError::Encoding(9)));
    }

    #[test]
    fn unames_map_to_machines() {
        assert_eq!(machine_for_uname("x86_64"), Some(62));
        assert_eq!(machine_for_uname("aarch64"), Some(183));
        assert_eq!(machine_for_uname("armv7l"), Some(40));
        assert_eq!(machine_for_uname("pdp11"), None);
        for uname in [
            "x86_64", "aarch64", "i686", "armv7l", "riscv64", "ppc64le", "s390x",
        ] {
            let machine = machine_for_uname(uname).expect("known");
            assert!(machine_name(machine).is_some(), "{uname}");
        }
    }
}
