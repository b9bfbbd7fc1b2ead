//! Why [`super::direction`] refuses to move a host (what it found that no move leads out of
//! safely) or leaves it alone (a rollback that is not this host's), as values.

use super::record::{Op, short};

/// Why no move leads the host anywhere safely: what was found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the state record is unreadable: {why}")]
    UnreadableRecord { why: String },
    #[error("no live nginx master named by the pid file")]
    NoLiveMaster,
    #[error(
        "no ngfleet state record beside the binary: this host's history is unknown, so there is no version to go back to (run `ngfleet roll` with the version you want)"
    )]
    NoRecord,
    #[error(
        "the state record says {} runs, but the master runs {}: nginx was changed outside ngfleet; refusing to guess a direction (run `ngfleet roll` with the version you want)",
        short(recorded.as_deref().unwrap_or("nothing")),
        short(running)
    )]
    RecordDisagrees {
        recorded: Option<String>,
        running: String,
    },
    #[error(
        "the binary on disk ({}) is not the one the master runs ({}): it was changed outside ngfleet",
        short(disk),
        short(running)
    )]
    DiskChanged { disk: String, running: String },
    #[error("the pid file names pid {pid}, which is not an nginx master ({argv:?})")]
    NotAMaster { pid: u32, argv: String },
    #[error(
        "two masters ({pid} and old {old}) but no ngfleet operation in flight: another upgrade is in progress"
    )]
    ForeignUpgrade { pid: u32, old: u32 },
    #[error("a stale .oldbin names {stale}, which is gone; master {pid} is running")]
    StaleOldbin { stale: u32, pid: u32 },
    #[error(
        "the binary on disk ({}) is neither {} nor {} of the {} in flight",
        short(disk),
        short(&op.from),
        short(&op.to),
        op.kind.name()
    )]
    DiskOutsideOp { disk: String, op: Op },
    #[error(
        "master {pid} runs {} (disk {}), neither {} nor {} of the {} in flight",
        short(running),
        short(disk),
        short(&op.from),
        short(&op.to),
        op.kind.name()
    )]
    MasterOutsideOp {
        pid: u32,
        running: String,
        disk: String,
        op: Op,
    },
    #[error(
        "two masters run {} (old) and {} (new), not the {} in flight from {} to {}",
        short(old),
        short(new),
        op.kind.name(),
        short(&op.from),
        short(&op.to)
    )]
    MastersOutsideOp { old: String, new: String, op: Op },
    #[error("two masters ({pid} and old {old}) but the new one is not a child of the old one")]
    NotAChild { pid: u32, old: u32 },
    #[error("no nginx master: the pid file is missing")]
    NoPidFile,
    #[error(
        "no live nginx master (pid file names {}, .oldbin names {})",
        named(*pid_file),
        named(*oldbin)
    )]
    NoLiveMasterNamed {
        pid_file: Option<u32>,
        oldbin: Option<u32>,
    },
}

fn named(pid: Option<u32>) -> String {
    pid.map_or("nothing".into(), |p| p.to_string())
}

/// Why a rollback leaves a host alone.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    #[error(
        "an {} from {} to {} is in flight, not one of {}: left alone",
        op.kind.name(),
        short(&op.from),
        short(&op.to),
        short(of)
    )]
    OtherOperation { op: Op, of: String },
    #[error("runs {}, not {}: left alone", short(running), short(of))]
    RunsOther { running: String, of: String },
    #[error(
        "no earlier version recorded before {}: nothing to go back to",
        short(running)
    )]
    NoEarlier { running: String },
}
