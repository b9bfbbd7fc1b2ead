//! The one integration test binary: every test runs the real `ngfleet` binary through the
//! builder in `harness` (`Test`), against lab hosts from `lab` (`lab!(n)`) where it needs them.

#[macro_use]
mod lab;
mod harness;

mod ansible;
mod ansible_diff;
mod ansible_gen;
mod binary;
mod certificates;
mod cli;
mod gates;
mod load;
mod lock;
mod plan;
mod probe;
mod rollout;
mod safety;
mod slow;
mod ssh_config_diff;
mod ssh_config_lab;
mod status;
mod sudo_password;
mod systemd;
mod templates;
mod trust;
mod upgrade;
mod upload;
mod validate;
