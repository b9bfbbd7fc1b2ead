//! A command held open as a lease (the per-host lock): it prints one line when it is ready,
//! then answers heartbeats. The controller writes a line every [`Heartbeat::interval`]; the
//! command echoes each line and exits when none arrives within [`Heartbeat::silence`] or its
//! input ends. So the holder on the host dies with its controller even when the connection
//! hangs without closing (a partition), instead of lingering until TCP keepalive. The
//! controller counts the lease lost first: when the command ends, the channel closes, a
//! heartbeat cannot be sent, or no echo has vouched for it for [`Heartbeat::trust`].
//! What the command prints before its ready line (the lock's first observation) comes back
//! with the lease ([`Held::take_said`]).

use std::collections::VecDeque;
use std::time::Duration;

use russh::client::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::SshError;
use super::command::RemoteCommand;
use super::error::{SshErrorKind, Step, human_duration};
use super::session::{ExecOutput, ExitStatus, Session};
use super::trace::Ending;

/// The timing of a lease. The holder exits after `silence` without a heartbeat line; the
/// controller writes one every `interval`, a sixth of `silence` (always below a third), so a
/// few late or lost lines do not end a healthy lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    interval: Duration,
    silence: Duration,
}

impl Heartbeat {
    /// The per-host lock's: its holder exits 30 s after the last heartbeat it read, and a
    /// heartbeat goes out every 5 s.
    pub const DEFAULT: Heartbeat = Heartbeat::new(30);

    /// A lease whose holder exits after `silence_secs` (at least 1) without a heartbeat.
    /// Whole seconds, because the holder's limit is a shell `timeout` argument.
    pub const fn new(silence_secs: u32) -> Heartbeat {
        let secs = if silence_secs == 0 { 1 } else { silence_secs };
        let silence = Duration::from_secs(secs as u64);
        Heartbeat {
            interval: Duration::from_millis(secs as u64 * 1000 / 6),
            silence,
        }
    }

    /// How often the controller writes a heartbeat line.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How long the holder waits for a heartbeat line before it exits.
    pub fn silence(&self) -> Duration {
        self.silence
    }

    /// The silence limit as the holder's argument (whole seconds).
    pub fn silence_arg(&self) -> String {
        self.silence.as_secs().to_string()
    }

    /// How long after sending a heartbeat its echo vouches for the lease. The holder reads a
    /// line after it was sent and then waits `silence`, so giving up `interval` earlier than
    /// that means the controller always counts the lease lost before the host lets go.
    pub fn trust(&self) -> Duration {
        self.silence.saturating_sub(self.interval)
    }
}

/// A running command that answered its first line, kept alive by heartbeats.
pub struct Held {
    host: String,
    step: Step,
    /// Set (with the reason) when the lease is lost.
    lost: watch::Receiver<Option<String>>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    /// What the command printed before its ready line.
    said: Vec<u8>,
}

impl Held {
    /// What the command printed on stdout before its ready line (taken once).
    pub fn take_said(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.said)
    }

    /// Whether the lease is lost: the command ended, the channel closed, a heartbeat could
    /// not be sent, or none was answered in time. A lost lease is never regained.
    pub fn is_lost(&self) -> bool {
        self.lost.borrow().is_some() || self.task.is_finished()
    }

    /// Waits until the lease is lost; the error (kind [`SshErrorKind::HoldLost`]) says why.
    pub async fn lost(&self) -> SshError {
        let mut lost = self.lost.clone();
        let reason = match lost.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => "the heartbeat stopped".to_owned(),
        };
        SshError::new(
            self.host.clone(),
            self.step.clone(),
            SshErrorKind::HoldLost { reason },
        )
    }

    /// Stops the heartbeat and closes the command's standard input: the command ends. Waits
    /// (at most a heartbeat interval) for it to exit, then closes the channel.
    pub async fn release(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// What a held command said instead of its ready line.
#[derive(Debug)]
pub enum HoldOutcome {
    Held(Held),
    /// The command ended (or printed something else first): its output.
    Refused(ExecOutput),
}

impl Session {
    /// Runs `cmd` and waits (up to `deadline`) for a stdout line that is `ready` (what came
    /// before it is kept: [`Held::take_said`]). Then the command keeps running, fed [`Heartbeat::DEFAULT`] heartbeats, until
    /// [`Held::release`], the session's end, or the lease is lost. The command must echo each
    /// heartbeat line and exit after the silence limit without one.
    pub async fn hold(
        &self,
        cmd: &RemoteCommand,
        ready: &str,
        deadline: Duration,
    ) -> Result<HoldOutcome, SshError> {
        self.hold_with(cmd, ready, deadline, Heartbeat::DEFAULT)
            .await
    }

    /// [`Session::hold`] with the given heartbeat timing (which `cmd` must also be given).
    /// Traced at `-v` once held or refused.
    pub async fn hold_with(
        &self,
        cmd: &RemoteCommand,
        ready: &str,
        deadline: Duration,
        beat: Heartbeat,
    ) -> Result<HoldOutcome, SshError> {
        let started = Instant::now();
        let result = self.hold_untraced(cmd, ready, deadline, beat).await;
        let ending = match &result {
            Ok(HoldOutcome::Held(held)) => Ending::Holding(&held.said),
            Ok(HoldOutcome::Refused(out)) => Ending::Ran(out),
            Err(e) => Ending::Failed(e),
        };
        self.trace(cmd, started.elapsed(), ending);
        result
    }

    async fn hold_untraced(
        &self,
        cmd: &RemoteCommand,
        ready: &str,
        deadline: Duration,
        beat: Heartbeat,
    ) -> Result<HoldOutcome, SshError> {
        let step = Step::Exec(cmd.label().to_owned());
        let (line, password) = self.line_for(cmd, &step)?;
        let timed_out = || self.error(step.clone(), SshErrorKind::Timeout { after: deadline });
        let work = async {
            let channel = self
                .open_channel()
                .await
                .map_err(|e| self.channel_error(&step, e))?;
            let (mut reader, writer) = channel.split();
            writer
                .exec(true, line.into_bytes())
                .await
                .map_err(|e| self.channel_error(&step, e))?;
            if let Some(password) = &password {
                // Before the first heartbeat.
                let _ = writer.data(&password[..]).await;
            }
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            let mut status = ExitStatus::Unknown;
            // Where the next unread line starts.
            let mut line = 0;
            while let Some(msg) = reader.wait().await {
                match msg {
                    ChannelMsg::Data { data } => {
                        stdout.extend_from_slice(&data);
                        if let Some((start, next)) = ready_line(&stdout, &mut line, ready) {
                            let lease = Lease {
                                beat,
                                pending: stdout.split_off(next),
                                // The holder's silence timer starts when it prints its ready
                                // line (after its own work, such as the lock's probe): at
                                // the latest now, so the trust counts from now.
                                trusted_until: Instant::now() + beat.trust(),
                            };
                            stdout.truncate(start);
                            return Ok(HoldOutcome::Held(self.keep(
                                step.clone(),
                                reader,
                                writer,
                                lease,
                                stdout,
                            )));
                        }
                    }
                    ChannelMsg::ExtendedData { data, ext: 1 } => stderr.extend_from_slice(&data),
                    ChannelMsg::ExitStatus { exit_status } => {
                        status = ExitStatus::Code(exit_status)
                    }
                    ChannelMsg::Close => break,
                    _ => {}
                }
            }
            let output = ExecOutput {
                status,
                stdout,
                stderr,
            };
            match self.sudo_denied(cmd, &step, &output) {
                Some(denied) => Err(denied),
                None => Ok(HoldOutcome::Refused(output)),
            }
        };
        tokio::time::timeout(deadline, work)
            .await
            .map_err(|_| timed_out())?
    }

    /// Starts the heartbeat task of a command that is ready.
    fn keep(
        &self,
        step: Step,
        reader: ChannelReadHalf,
        writer: ChannelWriteHalf<Msg>,
        lease: Lease,
        said: Vec<u8>,
    ) -> Held {
        let (lost_tx, lost_rx) = watch::channel(None);
        let (stop_tx, stop_rx) = oneshot::channel();
        let patience = lease.beat.interval;
        let task = tokio::spawn(async move {
            let mut reader = reader;
            let lost = lease.run(&mut reader, &writer, stop_rx).await;
            let _ = writer.eof().await;
            match lost {
                Some(reason) => {
                    let _ = lost_tx.send(Some(reason));
                }
                // Released: the holder ends at the end of its input; wait (briefly) for it,
                // so the lock is free when `release` returns.
                None => {
                    let _ = tokio::time::timeout(patience, ended(&mut reader)).await;
                }
            }
            let _ = writer.close().await;
        });
        Held {
            host: self.name().to_owned(),
            step,
            lost: lost_rx,
            stop: stop_tx,
            task,
            said,
        }
    }
}

/// Reads the complete lines of `out` from `*from` on (moving it past them) until one is
/// `ready`: where that line starts and where the next one does.
fn ready_line(out: &[u8], from: &mut usize, ready: &str) -> Option<(usize, usize)> {
    while let Some(len) = out[*from..].iter().position(|b| *b == b'\n') {
        let start = *from;
        *from = start + len + 1;
        if out[start..start + len] == *ready.as_bytes() {
            return Some((start, *from));
        }
    }
    None
}

/// The controller's side of a lease while it lasts.
struct Lease {
    beat: Heartbeat,
    /// Output after the ready line not yet read as lines.
    pending: Vec<u8>,
    /// Until when the newest echo vouches for the lease.
    trusted_until: Instant,
}

impl Lease {
    /// Heartbeats until the lease is lost (`Some(why)`) or `stop` fires or is dropped (`None`).
    async fn run(
        mut self,
        reader: &mut ChannelReadHalf,
        writer: &ChannelWriteHalf<Msg>,
        mut stop: oneshot::Receiver<()>,
    ) -> Option<String> {
        // The first heartbeat one interval after the ready line, not at once: the holder
        // waits `silence` for it either way, and a lease released within the interval (a
        // prepared host switched at once) costs the holder no second `timeout head`.
        let mut tick =
            tokio::time::interval_at(Instant::now() + self.beat.interval, self.beat.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sent: VecDeque<(u64, Instant)> = VecDeque::new();
        let mut seq = 0u64;
        let expiry = tokio::time::sleep_until(self.trusted_until);
        tokio::pin!(expiry);
        self.take_echoes(&mut sent);
        loop {
            tokio::select! {
                _ = &mut stop => return None,
                () = &mut expiry => {
                    return Some(format!(
                        "no heartbeat answered for {}",
                        human_duration(self.beat.trust())
                    ));
                }
                _ = tick.tick() => {
                    seq += 1;
                    sent.push_back((seq, Instant::now()));
                    let line = format!("hb {seq}\n");
                    match tokio::time::timeout(self.beat.interval, writer.data(line.as_bytes())).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return Some("failed to send a heartbeat".to_owned()),
                        Err(_) => return Some("failed to send a heartbeat in time".to_owned()),
                    }
                }
                msg = reader.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => {
                        self.pending.extend_from_slice(&data);
                        self.take_echoes(&mut sent);
                        expiry.as_mut().reset(self.trusted_until);
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => {
                        return Some(format!("the holder exited (exit code {exit_status})"));
                    }
                    Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                        return Some(format!("the holder was killed by signal {signal_name:?}"));
                    }
                    Some(ChannelMsg::Eof | ChannelMsg::Close) | None => {
                        return Some("the holder's channel closed".to_owned());
                    }
                    Some(_) => {}
                },
            }
        }
    }

    /// Reads complete echo lines from `pending`; each extends the trust from when its
    /// heartbeat was sent.
    fn take_echoes(&mut self, sent: &mut VecDeque<(u64, Instant)>) {
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let Some(seq) = echo_seq(&line[..end]) else {
                continue;
            };
            while let Some(&(n, at)) = sent.front() {
                if n > seq {
                    break;
                }
                sent.pop_front();
                if n == seq {
                    self.trusted_until = self.trusted_until.max(at + self.beat.trust());
                }
            }
        }
    }
}

/// Until the command has exited or its channel closed.
async fn ended(reader: &mut ChannelReadHalf) {
    while let Some(msg) = reader.wait().await {
        if matches!(
            msg,
            ChannelMsg::ExitStatus { .. } | ChannelMsg::ExitSignal { .. } | ChannelMsg::Close
        ) {
            return;
        }
    }
}

/// The sequence number of an echoed heartbeat line (`hb N`).
fn echo_seq(line: &[u8]) -> Option<u64> {
    std::str::from_utf8(line)
        .ok()?
        .trim()
        .strip_prefix("hb ")?
        .parse()
        .ok()
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("host", &self.host)
            .field("lost", &self.is_lost())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_lease_beats_every_5s_and_lets_go_after_30s() {
        let beat = Heartbeat::DEFAULT;
        assert_eq!(beat.interval(), Duration::from_secs(5));
        assert_eq!(beat.silence(), Duration::from_secs(30));
        assert_eq!(beat.silence_arg(), "30");
        assert_eq!(beat.trust(), Duration::from_secs(25));
    }

    #[test]
    fn the_interval_stays_below_a_third_of_the_silence() {
        for secs in [0, 1, 2, 3, 4, 7, 30, 600] {
            let beat = Heartbeat::new(secs);
            assert!(beat.silence() >= Duration::from_secs(1), "{beat:?}");
            assert!(beat.interval() * 3 < beat.silence(), "{beat:?}");
            assert!(!beat.interval().is_zero(), "{beat:?}");
            assert!(beat.trust() < beat.silence(), "{beat:?}");
        }
    }

    #[test]
    fn the_ready_line_may_follow_other_output() {
        let mut from = 0;
        assert_eq!(
            ready_line(b"locked\nhb 1\n", &mut from, "locked"),
            Some((0, 7))
        );
        let mut from = 0;
        let out = b"probe 1\nend ok\nlock";
        assert_eq!(ready_line(out, &mut from, "locked"), None);
        assert_eq!(from, 15, "complete lines are not read again");
        let out = b"probe 1\nend ok\nlocked\nhb";
        assert_eq!(ready_line(out, &mut from, "locked"), Some((15, 22)));
        let mut from = 0;
        assert_eq!(ready_line(b"busy x; locked\n", &mut from, "locked"), None);
        assert_eq!(ready_line(b"not locked\n", &mut 0, "locked"), None);
    }

    #[test]
    fn echo_lines_name_their_heartbeat() {
        assert_eq!(echo_seq(b"hb 12"), Some(12));
        assert_eq!(echo_seq(b"hb 3\r"), Some(3));
        assert_eq!(echo_seq(b"locked"), None);
        assert_eq!(echo_seq(b"hb x"), None);
        assert_eq!(echo_seq(b"\xff"), None);
    }

    #[test]
    fn an_echo_vouches_from_when_its_heartbeat_was_sent() {
        let beat = Heartbeat::new(6);
        let t0 = Instant::now();
        let mut lease = Lease {
            beat,
            pending: b"hb 2\nnoise\nhb".to_vec(),
            trusted_until: t0,
        };
        let t1 = t0 + Duration::from_secs(1);
        let t2 = t0 + Duration::from_secs(2);
        let t3 = t0 + Duration::from_secs(3);
        let mut sent = VecDeque::from([(1, t1), (2, t2), (3, t3)]);
        lease.take_echoes(&mut sent);
        assert_eq!(lease.trusted_until, t2 + beat.trust());
        assert_eq!(
            sent,
            VecDeque::from([(3, t3)]),
            "older heartbeats are settled"
        );
        assert_eq!(
            lease.pending, b"hb",
            "an incomplete line waits for the rest"
        );
        lease.pending.extend_from_slice(b" 3\n");
        lease.take_echoes(&mut sent);
        assert_eq!(lease.trusted_until, t3 + beat.trust());
        assert!(sent.is_empty());
    }

    #[test]
    fn a_late_echo_never_shortens_the_trust() {
        let beat = Heartbeat::new(6);
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(60);
        let mut lease = Lease {
            beat,
            pending: b"hb 1\n".to_vec(),
            trusted_until: later,
        };
        let mut sent = VecDeque::from([(1, t0)]);
        lease.take_echoes(&mut sent);
        assert_eq!(lease.trusted_until, later);
    }
}
