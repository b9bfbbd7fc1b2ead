//! Output for people and programs. Reporters consume values and events; they decide nothing.

pub mod plan;
pub mod status;
