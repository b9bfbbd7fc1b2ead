//! The rollout: waves in order, at most `parallel` hosts at once, the failure budget, the
//! rollback scope, deferred commits, maintenance windows, the canary pause, interruption.

pub mod dispatch;
pub mod policy;
pub mod stop;
