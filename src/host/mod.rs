//! One host's nginx: what a probe observes on it, and how that is judged.

pub mod act;
mod acted;
#[cfg(test)]
mod adversity_tests;
mod begin;
pub mod classify;
mod course;
pub mod decide;
pub mod direction;
pub mod event;
pub mod failure;
mod forward;
pub mod lock;
pub mod observe;
pub mod prepare;
#[cfg(test)]
mod prepare_tests;
pub mod probe;
pub mod procedure;
pub mod ready;
pub mod record;
pub mod refusal;
pub mod remote;
mod revert;
pub mod round_trips;
pub mod scripts;
#[cfg(test)]
pub mod sim;
mod step;
#[cfg(test)]
mod step_tests;
pub mod tunnel_ahead;
pub mod upgrade;
#[cfg(test)]
mod walk_tests;
