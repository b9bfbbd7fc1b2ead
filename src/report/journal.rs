//! The run journal: an append-only JSON-lines file of every rollout event, flushed as it goes,
//! so a crash or a `kill -9` leaves a readable record up to the last step.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::rollout::event::RolloutEvent;

pub struct Journal {
    file: File,
}

impl Journal {
    /// Creates the journal file (and its directory).
    pub fn create(path: &Path) -> io::Result<Journal> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Journal { file })
    }

    /// Appends one event with a timestamp and flushes it to disk.
    pub fn write(&mut self, time: &str, event: &RolloutEvent) -> io::Result<()> {
        let mut value = serde_json::to_value(event).map_err(io::Error::other)?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("time".into(), serde_json::Value::String(time.to_owned()));
        }
        let line = serde_json::to_string(&value).map_err(io::Error::other)?;
        writeln!(self.file, "{line}")?;
        self.file.sync_data()
    }
}

/// The default journal location: `$XDG_STATE_HOME/ngfleet/runs/RUN.jsonl`, else
/// `~/.local/state/ngfleet/runs/RUN.jsonl`, else `./ngfleet-runs/RUN.jsonl`.
pub fn default_path(run_id: &str) -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .map(|b| b.join("ngfleet/runs"))
        .unwrap_or_else(|| PathBuf::from("ngfleet-runs"));
    base.join(format!("{run_id}.jsonl"))
}
