//! The pure model: input files, their validation, and the values the rest of ngfleet uses.
//! Nothing under `model` does I/O: callers read files and pass text in.

pub mod address;
pub mod diagnostic;
pub mod duration;
pub mod elf;
pub mod gate;
pub mod glob;
pub mod hostname;
pub mod hostrange;
pub mod inventory;
pub mod keypath;
pub mod layout;
pub mod merge;
pub mod pattern;
pub mod pyliteral;
pub mod pyshlex;
pub mod reader;
pub mod shellword;
pub mod source;
pub mod spec;
pub mod ssh_config;
pub mod template;
pub mod values;
pub mod window;
