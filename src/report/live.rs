//! The one sink for rollout events: every event goes to the journal, and to the operator as
//! live progress bars (a terminal), timestamped lines (no terminal), or JSON lines (`--json`).
//! A recorded host key is also shown on stderr whatever the display, `-q` included.
//! It renders; it decides nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::journal::Journal;
use crate::rollout::config::Display;
use crate::rollout::event::{RolloutEvent, Sink, StepStatus};
use crate::rollout::outcome::{self, JobKind};

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    hosts: HashMap<String, ProgressBar>,
}

struct Inner {
    journal: Option<Journal>,
    display: Display,
    bars: Option<Bars>,
    total: usize,
    waves: usize,
    /// What the run is (from its first event), for what counts as a failure.
    job: JobKind,
    failed: usize,
    journal_error: Option<String>,
}

pub struct Reporter {
    inner: Mutex<Inner>,
}

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Millisecond)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

impl Reporter {
    pub fn new(journal: Option<Journal>, display: Display) -> Reporter {
        Reporter {
            inner: Mutex::new(Inner {
                journal,
                display,
                bars: None,
                total: 0,
                waves: 0,
                job: JobKind::Roll,
                failed: 0,
                journal_error: None,
            }),
        }
    }

    /// A journal write that failed, if any (reported at the end; the rollout goes on).
    pub fn journal_error(&self) -> Option<String> {
        self.inner.lock().ok().and_then(|i| i.journal_error.clone())
    }

    fn show(&self, event: RolloutEvent) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let time = now();
        if let Some(journal) = inner.journal.as_mut()
            && let Err(e) = journal.write(&time, &event)
        {
            inner.journal_error = Some(format!("failed to write the journal: {e}"));
        }
        // Shown on stderr in every display (above the bars when there are bars).
        let on_stderr = matches!(event, RolloutEvent::HostKeyRecorded { .. });
        match inner.display {
            Display::Json => {
                if let Ok(mut value) = serde_json::to_value(&event) {
                    if let Some(obj) = value.as_object_mut() {
                        obj.insert("time".into(), serde_json::Value::String(time.clone()));
                    }
                    println!("{value}");
                }
            }
            Display::Lines if !on_stderr => {
                if let Some(line) = line(&event) {
                    println!("{time} {line}");
                }
            }
            Display::Bars => inner.bars_event(&event),
            Display::Lines | Display::Quiet => {}
        }
        if on_stderr
            && inner.bars.is_none()
            && let Some(line) = line(&event)
        {
            eprintln!("{line}");
        }
    }

    /// Prints a line above the bars (or plainly on stderr).
    fn tell(&self, text: &str) {
        let Ok(inner) = self.inner.lock() else {
            return;
        };
        match (&inner.bars, inner.display) {
            // The canary question must be seen: on stderr, away from the JSON on stdout.
            (_, Display::Json) => eprintln!("{text}"),
            (Some(b), _) => {
                let _ = b.multi.println(text);
            }
            _ => eprintln!("{text}"),
        }
    }

    pub fn finish(&self) {
        if let Ok(mut inner) = self.inner.lock()
            && let Some(bars) = inner.bars.take()
        {
            for bar in bars.hosts.values() {
                bar.finish_and_clear();
            }
            bars.overall.finish_and_clear();
        }
    }
}

impl Sink for Reporter {
    fn emit(&self, event: RolloutEvent) {
        self.show(event);
    }

    fn say(&self, text: &str) {
        self.tell(text);
    }
}

impl Inner {
    fn bars_event(&mut self, event: &RolloutEvent) {
        match event {
            RolloutEvent::RunStarted {
                hosts,
                waves,
                command,
                ..
            } => {
                self.total = *hosts;
                self.job = *command;
                self.waves = *waves;
                let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
                let overall = multi.add(ProgressBar::new(*hosts as u64));
                overall.set_style(
                    ProgressStyle::with_template(
                        "{prefix:.bold} [{bar:30}] {pos}/{len} hosts {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                overall.set_prefix("rollout");
                overall.enable_steady_tick(Duration::from_millis(200));
                self.bars = Some(Bars {
                    multi,
                    overall,
                    hosts: HashMap::new(),
                });
            }
            RolloutEvent::WaveStarted { wave, canary, .. } => {
                let waves = self.waves;
                let failed = self.failed;
                if let Some(b) = &self.bars {
                    let kind = if *canary { " (canary)" } else { "" };
                    b.overall
                        .set_message(format!("wave {}/{waves}{kind}, {failed} failed", wave + 1));
                }
            }
            RolloutEvent::Step {
                host, step, status, ..
            } => {
                if let Some(b) = self.bars.as_mut() {
                    let bar = b.hosts.entry(host.clone()).or_insert_with(|| {
                        let bar = b.multi.add(ProgressBar::new_spinner());
                        bar.set_style(
                            ProgressStyle::with_template("  {spinner} {prefix:<16} {msg}")
                                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        bar.set_prefix(host.clone());
                        bar.enable_steady_tick(Duration::from_millis(120));
                        bar
                    });
                    bar.set_message(format!("{step} {}", status.name()));
                }
            }
            RolloutEvent::HostFinished {
                host,
                result,
                elapsed_ms,
                error,
                ..
            } => {
                if outcome::is_failure(self.job, *result) {
                    self.failed += 1;
                }
                if let Some(b) = self.bars.as_mut() {
                    if let Some(bar) = b.hosts.remove(host) {
                        bar.finish_and_clear();
                        b.multi.remove(&bar);
                    }
                    b.overall.inc(1);
                    let detail = error
                        .as_deref()
                        .map(|e| format!(": {}", super::without_host(host, e)))
                        .unwrap_or_default();
                    let _ = b.multi.println(format!(
                        "  {host:<16} {:<15} {:>6.1}s{detail}",
                        result.name(),
                        *elapsed_ms as f64 / 1000.0
                    ));
                }
            }
            other => {
                if let (Some(b), Some(text)) = (&self.bars, line(other)) {
                    let _ = b.multi.println(text);
                }
            }
        }
    }
}

/// A plain line for an event (None for events not worth a line).
fn line(event: &RolloutEvent) -> Option<String> {
    Some(match event {
        RolloutEvent::RunStarted {
            run_id,
            spec,
            hosts,
            waves,
            journal,
            binary_sha256,
            ..
        } => format!(
            "run {run_id}: {spec}: {hosts} hosts in {waves} waves{}; journal {journal}",
            binary_sha256
                .as_deref()
                .map(|s| format!(", binary sha256 {}", &s[..s.len().min(16)]))
                .unwrap_or_default()
        ),
        RolloutEvent::WaitingForWindow { opens_at } => {
            format!("outside the maintenance windows: waiting until {opens_at}")
        }
        RolloutEvent::HostKeyRecorded {
            host,
            endpoint,
            key_type,
            fingerprint,
            file,
        } => super::host_keys::recorded(
            host,
            endpoint,
            key_type,
            fingerprint,
            std::path::Path::new(file),
        ),
        RolloutEvent::WaveStarted {
            wave,
            canary,
            hosts,
        } => format!(
            "wave {wave}{}: {}",
            if *canary { " (canary)" } else { "" },
            hosts.join(" ")
        ),
        RolloutEvent::Step {
            host,
            step,
            status,
            elapsed_ms,
            error,
        } => match error {
            Some(e) if *status == StepStatus::Note => {
                format!("{host}: {step}: {}", super::without_host(host, e))
            }
            Some(e) => format!(
                "{host}: {step} {} after {elapsed_ms}ms: {}",
                status.name(),
                super::without_host(host, e)
            ),
            None if *status == StepStatus::Started => format!("{host}: {step} ..."),
            None => format!("{host}: {step} {} in {elapsed_ms}ms", status.name()),
        },
        RolloutEvent::HostFinished {
            host,
            result,
            elapsed_ms,
            error,
            ..
        } => format!(
            "{host}: {} in {:.1}s{}",
            result.name(),
            *elapsed_ms as f64 / 1000.0,
            error
                .as_deref()
                .map(|e| format!(": {}", super::without_host(host, e)))
                .unwrap_or_default()
        ),
        RolloutEvent::WaveFinished { wave, failed } => {
            format!("wave {wave} finished ({failed} failed)")
        }
        RolloutEvent::Halted { reason } => format!("halted: {reason}"),
        RolloutEvent::Summary { .. } => return None,
    })
}
