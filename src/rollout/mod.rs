//! The rollout: its configuration, the dispatcher's event loop, the executor that runs one
//! host, the pure policy, the events it reports and the results it comes to.

mod ahead;
pub mod check;
pub mod config;
pub mod dispatch;
pub mod event;
pub mod executor;
pub mod outcome;
pub mod policy;
mod run_state;
pub mod seams;
pub mod signals;
