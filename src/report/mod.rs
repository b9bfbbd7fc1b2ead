//! Output for people and programs. Reporters consume values and events; they decide nothing.

pub mod events;
pub mod host_keys;
pub mod journal;
pub mod live;
pub mod plan;
pub mod status;
pub mod summary;
