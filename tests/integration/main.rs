//! The one integration test binary: every test runs the real `ngfleet` binary through the
//! fluent builder in `support`.

mod support;

mod ansible;
mod ansible_diff;
mod ansible_gen;
mod binary;
mod cli;
mod gates;
mod lab;
mod load;
mod lock;
mod plan;
mod rollout;
mod safety;
mod slow;
mod status;
mod templates;
mod trust;
mod upgrade;
mod upload;
mod validate;
