//! One host's nginx: what a probe observes on it, and how that is judged.

pub mod classify;
pub mod decide;
pub mod event;
pub mod lock;
pub mod observe;
pub mod probe;
pub mod scripts;
pub mod upgrade;
