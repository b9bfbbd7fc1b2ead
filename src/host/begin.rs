//! The moves that begin an operation: preflight (with the pre gates) and staging (upload or
//! copy, verify, `-t`, in one command), which change nothing live and are all that [`super::prepare`] does
//! ahead of a host's turn; then install and start as one step command (record, install,
//! record, USR2, the wait for the new master on the host, and WINCH with the wait for the
//! drain when nothing is checked while both generations serve), judged by [`decide::start`].

use super::act::{Act, Cond, Miss, Said};
use super::acted::{Proof, next_obs};
use super::decide::{self, ElfRead, Problem, Start};
use super::event::Step;
use super::failure::{Blocker, Fault, Judged};
use super::observe::{Master, Observation};
use super::probe::Depth;
use super::procedure::{Procedure, Winched};
use super::record::{Op, OpKind, OpStep, Record};
use super::scripts::{self, HeaderAt, Layout, SignalTarget};
use super::step::Stop;
use super::upgrade::{CONFIG_TEST_LIMIT, FOLDED_DRAIN, Gate, Phase, Source, UpgradeError};

/// What a host's turn starts from: the serving master, the operation and the record it is
/// written into, and the staged binary.
pub(super) struct Turn<'t> {
    pub(super) master: &'t Master,
    pub(super) op: &'t Op,
    pub(super) record: &'t Record,
    pub(super) staged: &'t str,
}

impl Procedure<'_> {
    /// A new operation from a steady master: preflight (and the pre gates), stage, then
    /// install and start. Nothing live changes before the record says where the host is going.
    pub(super) async fn begin(
        &self,
        obs: &Observation,
        master: &Master,
        op: &Op,
        record: &Record,
        gate: &dyn Gate,
        winched: &mut Option<Winched>,
    ) -> Result<Option<Observation>, Stop> {
        let staged = self.get_ready(obs, master, op, gate).await?;
        let turn = Turn {
            master,
            op,
            record,
            staged: &staged,
        };
        self.install_start(obs, turn, gate, winched).await
    }

    /// Preflight (and the pre gates), our leftovers removed, the new binary staged and
    /// checked: the staged path. Changes nothing live.
    pub(super) async fn get_ready(
        &self,
        obs: &Observation,
        master: &Master,
        op: &Op,
        gate: &dyn Gate,
    ) -> Result<String, UpgradeError> {
        let layout = self.layout_at(obs);
        let source = self.source_for(&layout, op);
        self.step(Step::Preflight, async {
            let problems = self.preflight(obs, master, op, &source);
            if !problems.is_empty() {
                return Err(self.refused(Blocker::Preflight(problems)));
            }
            gate.check(self.remote, self.job.host, Phase::Pre, None)
                .await
                .map_err(|f| self.refused(Blocker::PreGate(f)))
        })
        .await?;
        self.cleanup(obs).await?;
        self.stage(obs, &layout, &source, master).await
    }

    /// Every preflight problem: the master and host ([`decide::preflight`]), the binary's
    /// machine (before anything is uploaded), and a backup to stage from.
    fn preflight(
        &self,
        obs: &Observation,
        master: &Master,
        op: &Op,
        source: &Source,
    ) -> Vec<Problem> {
        let layout = self.layout_at(obs);
        let size = match source {
            Source::Local { size, .. } => *size,
            Source::Remote { .. } => obs.binary.as_ref().and_then(|b| b.size).unwrap_or(0),
        };
        let mut problems = decide::preflight(obs, master, layout.binary.as_str(), size);
        if let Source::Local {
            machine: Some(machine),
            ..
        } = source
        {
            problems.extend(decide::machine_fits(obs, *machine));
        }
        if let Source::Remote { path, .. } = source
            && !obs.backups.iter().any(|b| &b.path == path)
        {
            problems.push(Problem::NoBackup {
                sha: op.to.clone(),
                path: path.clone(),
            });
        }
        problems
    }

    /// Where the binary of `op.to` comes from: the controller's file for a new version, the
    /// backup beside the binary for a version the host ran before.
    fn source_for(&self, layout: &Layout, op: &Op) -> Source {
        match self.job.source {
            Source::Local { sha256, .. } if *sha256 == op.to => self.job.source.clone(),
            _ if op.kind == OpKind::Rollback || op.to != self.job.source.sha256() => {
                Source::Remote {
                    path: layout.backup(&op.to),
                    sha256: op.to.clone(),
                }
            }
            other => other.clone(),
        }
    }

    /// Puts the new binary in a temp file beside the old one (uploaded and verified, or
    /// copied from a backup) and checks it there (`-t` with the master's own arguments, and
    /// the ELF header unless the controller read it from the uploaded file itself), in one
    /// command; returns its path. A binary that fails its check is removed and refused.
    async fn stage(
        &self,
        obs: &Observation,
        layout: &Layout,
        source: &Source,
        master: &Master,
    ) -> Result<String, UpgradeError> {
        self.step(Step::Stage, async {
            let tag = format!("{:08x}", rand::random::<u32>());
            let staged = layout.stage(&tag);
            let args = &master.argv[1..];
            let (out, header) = match source {
                Source::Local {
                    path,
                    sha256,
                    machine,
                    ..
                } => {
                    // The staged file IS the controller's binary once its sha256 matches:
                    // the header the controller read (and preflight judged) is its header.
                    let header = match machine {
                        Some(_) => HeaderAt::Controller,
                        None => HeaderAt::Host,
                    };
                    let cmd = scripts::upload_checked(&staged, sha256, header, args);
                    let deadline = self.deadlines().command.max(self.job.settings.upload_floor)
                        + CONFIG_TEST_LIMIT;
                    let up = self.remote.upload(path, &staged, &cmd, deadline).await?;
                    if up.sha256 != *sha256 {
                        let fault = Fault::UploadMismatch {
                            got: up.sha256,
                            expected: sha256.clone(),
                        };
                        return Err(self.remote_error(Step::Stage, fault));
                    }
                    (up.after, header)
                }
                Source::Remote { path, .. } => {
                    let cmd = scripts::stage_checked(path, &staged, args);
                    (self.exec(Step::Stage, &cmd).await?, HeaderAt::Host)
                }
            };
            let read = match header {
                HeaderAt::Controller => ElfRead::Controller,
                HeaderAt::Host => ElfRead::Host {
                    uname: &obs.machine,
                },
            };
            if let Err(bad) = decide::check_new(&out, read) {
                let remove = scripts::cleanup(std::slice::from_ref(&staged));
                self.exec(Step::Cleanup, &remove).await?;
                return Err(self.refused(Blocker::NewBinary(bad)));
            }
            Ok(staged)
        })
        .await
    }

    /// The host's turn: the record (install), the staged file renamed over the binary, the
    /// record (start), USR2, the wait for the new master and (see [`Procedure::usr2_acts`])
    /// WINCH, in one command.
    pub(super) async fn install_start(
        &self,
        obs: &Observation,
        turn: Turn<'_>,
        gate: &dyn Gate,
        winched: &mut Option<Winched>,
    ) -> Result<Option<Observation>, Stop> {
        let Turn {
            master,
            op,
            record,
            staged,
        } = turn;
        let layout = self.layout_at(obs);
        let (run, owner) = (&self.job.settings.run_id, &self.job.settings.owner);
        let at = |step| record.with_op(Op { step, ..op.clone() }, run, owner);
        let keep = decide::backups_to_keep(&record.history, self.job.settings.keep_backups);
        let mut acts = vec![
            // A host prepared ahead was observed then: the master must still serve as seen.
            Act::Check(Cond::Steady { pid: master.pid }),
            Act::Record(at(OpStep::Install)),
            Act::Install {
                staged: staged.to_owned(),
                file: layout.file.as_str().to_owned(),
                backup: layout.backup(&op.from),
                keep,
                sha256: op.to.clone(),
            },
            Act::Record(at(OpStep::Start)),
        ];
        acts.extend(self.usr2_acts(master, gate));
        let acted = self
            .step(Step::Install, async {
                let acted = self.act(Step::Install, &acts, Depth::Step).await?;
                if *acted.said(0) != Said::Done {
                    let remove = scripts::cleanup(&[staged.to_owned()]);
                    self.exec(Step::Cleanup, &remove).await?;
                    return Err(self.refused(Blocker::Moved { pid: master.pid }));
                }
                self.wrote(Step::Install, acted.said(1), "write the state record")?;
                self.wrote(Step::Install, acted.said(2), "install the new binary")?;
                self.wrote(Step::Install, acted.said(3), "write the state record")?;
                Ok::<_, UpgradeError>(acted)
            })
            .await?;
        self.step(Step::Usr2, self.started(master, acted, 4, gate, winched))
            .await
    }

    /// USR2 to the master whose binary was replaced on disk (the record says so first),
    /// and the wait for the new master (and WINCH), in one command.
    pub(super) async fn start(
        &self,
        obs: &Observation,
        old: &Master,
        op: &Op,
        gate: &dyn Gate,
        winched: &mut Option<Winched>,
    ) -> Result<Option<Observation>, Stop> {
        self.step(Step::Usr2, async {
            let mut acts: Vec<Act> = self.advanced(obs, op, OpStep::Start).into_iter().collect();
            let first = acts.len();
            acts.extend(self.usr2_acts(old, gate));
            let acted = self.act(Step::Usr2, &acts, Depth::Step).await?;
            if first > 0 {
                self.wrote(Step::Usr2, acted.said(0), "write the state record")?;
            }
            self.started(old, acted, first, gate, winched).await
        })
        .await
    }

    /// USR2 and the wait for the new master. When nothing is checked while both generations
    /// serve, the same command goes on, on the host: the new master checked ready (a child
    /// of the old one, named by the pid file, with accepting workers; never "the new binary
    /// exited"), WINCH to the old master, and a wait of at most [`FOLDED_DRAIN`] for its
    /// workers to finish. This saves a round trip and a probe per host; the controller still
    /// judges the start, then the drain, from what the command returns ([`Winched`]).
    fn usr2_acts(&self, old: &Master, gate: &dyn Gate) -> Vec<Act> {
        let mut acts = vec![
            Act::Signal {
                pid: old.pid,
                signal: "USR2",
                target: SignalTarget::Master,
                miss: Miss::Stops,
            },
            Act::Wait {
                cond: Cond::Start { old: old.pid },
                limit: self.deadlines().start,
            },
        ];
        if winch_follows_start(gate) {
            acts.extend([
                Act::Check(Cond::Ready { old: old.pid }),
                Act::Signal {
                    pid: old.pid,
                    signal: "WINCH",
                    target: SignalTarget::Master,
                    miss: Miss::GoneIsFine,
                },
                Act::Wait {
                    cond: Cond::Drained { old: old.pid },
                    limit: self.deadlines().drain.min(FOLDED_DRAIN),
                },
            ]);
        }
        acts
    }

    /// Judges USR2 (act `i`) and the wait after it: the new master ready, then the gates
    /// that hold with both generations serving.
    async fn started(
        &self,
        old: &Master,
        acted: super::act::Acted,
        i: usize,
        gate: &dyn Gate,
        winched: &mut Option<Winched>,
    ) -> Result<Option<Observation>, Stop> {
        // Folded in (see `usr2_acts`): the readiness check is act `i + 2`, WINCH `i + 3`.
        if winch_follows_start(gate) {
            *winched = Some(Winched {
                old: old.pid,
                acted: acted.clone(),
                at: i + 3,
            });
        }
        if !self.sent(Step::Usr2, acted.said(i), "USR2")? {
            let fault = Fault::MasterGone { pid: old.pid };
            return Err(self.remote_error(Step::Usr2, fault).into());
        }
        let limit = self.deadlines().start;
        let waited = self
            .settle(&acted, i + 1, limit, |obs| {
                match decide::start(obs, old.pid) {
                    Start::Waiting => None,
                    other => Some(other),
                }
            })
            .await?;
        let (new, proof) = match waited {
            Ok((Start::Ready(new), proof)) => (new, proof),
            Ok(_) => {
                let log = self.error_log(old).await;
                return Err(Judged::Exited { log }.into());
            }
            Err(_) => return Err(Judged::NotReady { waited: limit }.into()),
        };
        gate.check(
            self.remote,
            self.job.host,
            Phase::BothServing,
            Some(new.pid),
        )
        .await
        .map_err(Judged::BothServing)?;
        Ok(match proof {
            Proof::Returned => next_obs(acted, proof),
            Proof::Polled => None,
        })
    }

    /// The record's operation at a later step, as an act (none when it is there already).
    pub(super) fn advanced(&self, obs: &Observation, op: &Op, step: OpStep) -> Option<Act> {
        let record = obs.record.record().cloned().unwrap_or_default();
        if record.op.as_ref().is_some_and(|o| o.step == step) {
            return None;
        }
        let (run, owner) = (&self.job.settings.run_id, &self.job.settings.owner);
        Some(Act::Record(record.with_op(
            Op { step, ..op.clone() },
            run,
            owner,
        )))
    }
}

/// Whether the start command goes on with WINCH: nothing is checked while both generations
/// serve.
fn winch_follows_start(gate: &dyn Gate) -> bool {
    !gate.checks(Phase::BothServing)
}
