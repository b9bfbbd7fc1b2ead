//! ngfleet: hot-upgrade nginx across a fleet over SSH.
pub mod model;
