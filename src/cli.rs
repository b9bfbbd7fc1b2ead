//! The command line as clap sees it: flags and subcommands, nothing resolved yet.
//! [`crate::app`] turns these low-level arguments into loaded, validated inputs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueHint};

/// Hot-upgrade nginx across a fleet over SSH: canary first, then rolling batches, with health
/// gates and automatic rollback.
#[derive(Debug, Parser)]
#[command(
    name = "ngfleet",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Exit codes: 0 success; 1 rollout failed, every failed host restored; \
2 invalid input; 3 halted with a host that could not be restored; 4 paused (maintenance window \
closed, re-run to resume); 130 interrupted."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// known_hosts file to verify host keys against (overrides the inventory's).
    #[arg(long, global = true, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub known_hosts: Option<PathBuf>,
    /// Record host keys of hosts never seen before, printing each with its SHA256
    /// fingerprint. Changed keys are always refused; a known_hosts that cannot remember keys
    /// (/dev/null, a directory, unwritable) is refused before connecting.
    #[arg(long, global = true)]
    pub accept_new: bool,
    /// Ask once, on the terminal, for the sudo password, and give it to sudo on every host
    /// (as Ansible's -K). Without it the password comes from NGFLEET_BECOME_PASSWORD if that
    /// is set, else sudo runs with -n (passwordless sudo required).
    #[arg(short = 'K', long, global = true)]
    pub ask_become_pass: bool,
    /// ssh_config file to read instead of ~/.ssh/config and /etc/ssh/ssh_config (as
    /// `ssh -F FILE`); overrides the inventory's ngfleet_ssh_config.
    #[arg(long, global = true, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub ssh_config: Option<PathBuf>,
    /// At most this many hosts are contacted at once.
    #[arg(long, global = true, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub forks: u16,
    /// Show each connection and remote command on stderr: host, label, exit status, time
    /// (-vv: also the first lines of its output).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors and the final summary.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check an inventory, a rollout spec and the binary; list every problem.
    Validate(ValidateArgs),
    /// Show the hosts selected and the waves they go in, without connecting anywhere.
    Plan(PlanArgs),
    /// Report what every host runs (read-only).
    Status(TargetArgs),
    /// Roll the new nginx binary out: canary, then batches.
    Roll(RollArgs),
    /// Take hosts back to the binary they ran before.
    Rollback(RollbackArgs),
    /// Show who holds each host's lock and break the held ones (after confirmation).
    Unlock(UnlockArgs),
    /// Show the inventory as ngfleet reads it, in `ansible-inventory`'s formats.
    Inventory(InventoryArgs),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
    /// Print the remote probe script (for benchmarks and debugging).
    #[command(hide = true)]
    ProbeScript,
}

/// The two input files.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Ansible inventory (YAML or INI).
    #[arg(short, long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub inventory: PathBuf,
    /// Rollout spec; without it the documented defaults apply.
    #[arg(short, long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub playbook: Option<PathBuf>,
    /// The most hosts the inventory may hold, after range expansion.
    #[arg(long, value_name = "N", default_value_t = crate::model::inventory::DEFAULT_MAX_HOSTS,
          value_parser = clap::value_parser!(usize))]
    pub max_hosts: usize,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// The new nginx binary to check (overrides the spec's `binary.source`).
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub binary: Option<PathBuf>,
}

/// Inputs plus host selection and output format.
#[derive(Debug, Args)]
pub struct TargetArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Ansible host pattern narrowing the spec's `hosts` (e.g. `web:&eu:!web-03`).
    #[arg(short, long, value_name = "PATTERN")]
    pub limit: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Seed for `order: shuffle` (default: the spec's `seed`, else a random one, printed).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

#[derive(Debug, Args)]
pub struct RollArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The new nginx binary (overrides the spec's `binary.source`).
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub binary: Option<PathBuf>,
    /// Do not stop for the operator after the canary.
    #[arg(short, long)]
    pub yes: bool,
    /// Run now even outside the spec's maintenance windows.
    #[arg(long)]
    pub ignore_windows: bool,
    /// Seed for `order: shuffle`.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Where to write the run journal (JSON lines); default under ~/.local/state/ngfleet/runs.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub journal: Option<PathBuf>,
    /// Change nothing: prepare every selected host (connect, lock, preflight, stage and check
    /// the new binary), say what the roll would do there, and clean up. Exits 0 only when the
    /// roll would go through on every host.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The binary being taken away (default: the spec's `binary`); hosts that run anything
    /// else are left alone.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub binary: Option<PathBuf>,
    /// Do not ask before taking back more than one host (required for that without a
    /// terminal).
    #[arg(short, long)]
    pub yes: bool,
    /// Run now even outside the spec's maintenance windows.
    #[arg(long)]
    pub ignore_windows: bool,
    /// Where to write the run journal (JSON lines).
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub journal: Option<PathBuf>,
    /// Hosts taken back at once (default: the spec's `parallel`). A rollback goes back to a
    /// version the hosts ran: it runs as one wave, without the canary or batches.
    #[arg(long, value_name = "N")]
    pub parallel: Option<std::num::NonZeroUsize>,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Ansible host pattern narrowing the spec's `hosts` (e.g. `web:&eu:!web-03`).
    #[arg(short, long, value_name = "PATTERN")]
    pub limit: Option<String>,
    /// Break the held locks without asking (required without a terminal).
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("view").required(true).args(["list", "host", "graph"])))]
pub struct InventoryArgs {
    /// Ansible inventory (YAML or INI).
    #[arg(short, long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub inventory: PathBuf,
    /// The most hosts the inventory may hold, after range expansion.
    #[arg(long, value_name = "N", default_value_t = crate::model::inventory::DEFAULT_MAX_HOSTS,
          value_parser = clap::value_parser!(usize))]
    pub max_hosts: usize,
    /// Ansible host pattern: only these hosts (for --list and --graph).
    #[arg(short, long, value_name = "PATTERN")]
    pub limit: Option<String>,
    /// Every group and host with its variables, as `ansible-inventory --list` prints them.
    #[arg(long)]
    pub list: bool,
    /// One host's variables, as `ansible-inventory --host`.
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// The group tree (from GROUP, default all), as `ansible-inventory --graph`.
    #[arg(long, value_name = "GROUP", num_args = 0..=1, default_missing_value = "all")]
    pub graph: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn roll_takes_its_flags() {
        let cli = Cli::try_parse_from([
            "ngfleet",
            "roll",
            "-i",
            "inv.yaml",
            "--binary",
            "nginx",
            "--yes",
            "--ignore-windows",
            "--limit",
            "web:!web-03",
            "--forks",
            "50",
            "--accept-new",
        ])
        .expect("parses");
        assert_eq!(cli.global.forks, 50);
        assert!(cli.global.accept_new);
        let Command::Roll(roll) = cli.command else {
            panic!("expected roll");
        };
        assert!(roll.yes && roll.ignore_windows);
        assert_eq!(roll.target.limit.as_deref(), Some("web:!web-03"));
    }

    #[test]
    fn unlock_takes_its_flags() {
        let cli = Cli::try_parse_from(["ngfleet", "unlock", "-i", "inv.yaml", "-l", "web", "-y"])
            .expect("parses");
        let Command::Unlock(unlock) = cli.command else {
            panic!("expected unlock");
        };
        assert!(unlock.yes);
        assert_eq!(unlock.limit.as_deref(), Some("web"));
        assert_eq!(unlock.input.inventory, PathBuf::from("inv.yaml"));
        let asks = Cli::try_parse_from(["ngfleet", "unlock", "-i", "inv.yaml"]).expect("parses");
        assert!(matches!(
            asks.command,
            Command::Unlock(UnlockArgs { yes: false, .. })
        ));
    }

    #[test]
    fn rollback_and_validate_take_their_flags() {
        let cli = Cli::try_parse_from([
            "ngfleet", "-vv", "rollback", "-i", "inv.yaml", "--yes", "--binary", "nginx",
        ])
        .expect("parses");
        assert_eq!(cli.global.verbose, 2);
        let Command::Rollback(rollback) = cli.command else {
            panic!("expected rollback");
        };
        assert!(rollback.yes);
        assert_eq!(rollback.binary, Some(PathBuf::from("nginx")));
        let short =
            Cli::try_parse_from(["ngfleet", "rollback", "-i", "inv.yaml", "-y"]).expect("parses");
        assert!(matches!(
            short.command,
            Command::Rollback(RollbackArgs { yes: true, .. })
        ));
        let validate =
            Cli::try_parse_from(["ngfleet", "validate", "-i", "inv.yaml", "--binary", "nginx"])
                .expect("parses");
        let Command::Validate(v) = validate.command else {
            panic!("expected validate");
        };
        assert_eq!(v.binary, Some(PathBuf::from("nginx")));
    }

    #[test]
    fn max_hosts_has_a_default_and_can_be_raised() {
        let plan = |extra: &[&str]| {
            let args = ["ngfleet", "plan", "-i", "inv.yaml"].iter().chain(extra);
            match Cli::try_parse_from(args).expect("parses").command {
                Command::Plan(plan) => plan.target.input.max_hosts,
                other => panic!("expected plan, got {other:?}"),
            }
        };
        assert_eq!(plan(&[]), 1_000_000);
        assert_eq!(plan(&["--max-hosts", "2000000"]), 2_000_000);
        assert!(
            Cli::try_parse_from(["ngfleet", "plan", "-i", "x", "--max-hosts", "many"]).is_err()
        );
    }

    #[test]
    fn forks_must_be_positive() {
        assert!(Cli::try_parse_from(["ngfleet", "--forks", "0", "status", "-i", "x"]).is_err());
    }

    #[test]
    fn ssh_config_is_global() {
        for args in [
            ["ngfleet", "--ssh-config", "cfg", "status", "-i", "x"],
            ["ngfleet", "status", "-i", "x", "--ssh-config", "cfg"],
        ] {
            let cli = Cli::try_parse_from(args).expect("parses");
            assert_eq!(cli.global.ssh_config, Some(PathBuf::from("cfg")));
        }
    }
}
