//! Running health gates against a host: HTTP (through SSH or direct, TLS with rustls), TCP,
//! remote and local commands, the error log since the upgrade began, and the running version.

pub mod failure;
pub mod http;
pub mod runner;
