//! ngfleet: hot-upgrade nginx across a fleet over SSH.
//!
//! `model` and `plan` are the pure core (no I/O). `inputs` reads files, `app` runs commands,
//! `report` renders output, `error` maps outcomes to exit codes. See ARCHITECTURE.md.

pub mod app;
pub mod cli;
pub mod error;
pub mod fleet;
pub mod gate;
pub mod host;
pub mod inputs;
pub mod model;
pub mod plan;
pub mod report;
pub mod rollout;
pub mod ssh;
pub mod status;
pub mod unlock;
