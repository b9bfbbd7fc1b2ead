//! One host's nginx: what a probe observes on it, and how that is judged.

pub mod classify;
pub mod observe;
