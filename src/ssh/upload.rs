//! Uploading a file to a temp path on a host: streamed over the session's
//! channel in large pipelined chunks (through sudo when privileged), hashed
//! with sha256 locally while streaming, and verified with `sha256sum` on the
//! host; a mismatching remote file is removed. A caller may put a shell function
//! `after` in front of [`UPLOAD_SCRIPT`] that the host runs in the same command
//! once the file has the sha256 it was given ([`Session::upload_with`]).

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use russh::ChannelWriteHalf;
use russh::client::Msg;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::command::RemoteCommand;
use super::error::{SshError, SshErrorKind, Step};
use super::session::{FeedError, Session, Stdin};

/// Writes stdin to a fresh `$1` (never through an existing file or symlink:
/// removed first, then created with noclobber), private (umask 077), then
/// prints its sha256. Given `$2` (the sha256 the file must have) and more
/// arguments, it then runs the shell function `after` (which the caller puts in
/// front of this text) with `$3...` when the file has that sha256.
pub const UPLOAD_SCRIPT: &str = include_str!("scripts/upload.sh");
const REMOVE_SCRIPT: &str = include_str!("scripts/remove.sh");
/// Bytes read and handed to the channel at a time; russh splits them into
/// packets as the window allows, so several are in flight. russh reserves room
/// for a whole chunk in the connection's output buffer, which keeps its
/// capacity for the connection's life: 256 KiB chunks cost 60 MiB of peak
/// controller memory on a 200-host roll at `parallel: 50`, 64 KiB ones 43 MiB.
const CHUNK: usize = 64 * 1024;
/// Time granted to remove a bad upload even if the deadline is spent.
const CLEANUP_MIN: Duration = Duration::from_secs(10);

/// A verified upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Lowercase hex sha256 of the file, as sent and as found on the host.
    pub sha256: String,
    pub bytes: u64,
    /// What the command printed after the checksum line (the output of `after`).
    pub after: String,
}

/// What the feeder sent.
struct Sent {
    sha256: String,
    bytes: u64,
}

struct FileInput {
    file: tokio::fs::File,
}

impl Stdin for FileInput {
    type Output = Sent;

    async fn feed(mut self, channel: &ChannelWriteHalf<Msg>) -> Result<Sent, FeedError> {
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        let mut chunk = read_chunk(&mut self.file).await?;
        while !chunk.is_empty() {
            hasher.update(&chunk);
            bytes += chunk.len() as u64;
            // Read the next chunk while this one goes out.
            let (sent, next) = tokio::join!(channel.data_bytes(chunk), read_chunk(&mut self.file));
            sent.map_err(|_| FeedError::Channel)?;
            chunk = next?;
        }
        Ok(Sent {
            sha256: hex(&hasher.finalize()),
            bytes,
        })
    }
}

async fn read_chunk(file: &mut tokio::fs::File) -> Result<Vec<u8>, FeedError> {
    let mut buf = Vec::with_capacity(CHUNK);
    while buf.len() < CHUNK {
        let n = (&mut *file)
            .take((CHUNK - buf.len()) as u64)
            .read_to_end(&mut buf)
            .await
            .map_err(FeedError::Local)?;
        if n == 0 {
            break;
        }
    }
    Ok(buf)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The upload's command: writes stdin to `remote_tmp` and prints its sha256.
pub fn upload_command(remote_tmp: &str) -> RemoteCommand {
    RemoteCommand::script(UPLOAD_SCRIPT, [remote_tmp])
        .privileged()
        .labelled(Step::Upload(remote_tmp.to_owned()).to_string())
}

/// The digest `sha256sum` printed (`HEX  -`) on the first line, if it looks like one.
fn remote_digest(stdout: &[u8]) -> Option<String> {
    let first = stdout.split(|b| *b == b'\n').next()?;
    let text = std::str::from_utf8(first).ok()?;
    let digest = text.split_whitespace().next()?.trim_start_matches('\\');
    let valid = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| digest.to_ascii_lowercase())
}

/// What the command printed after the digest line.
fn after_digest(stdout: &[u8]) -> String {
    match stdout.iter().position(|b| *b == b'\n') {
        Some(end) => String::from_utf8_lossy(&stdout[end + 1..]).into_owned(),
        None => String::new(),
    }
}

/// Compares what we sent with what the host computed; `Err(found)` on a
/// mismatch (`found` is `<none>` when the output held no digest).
fn verify(expected: &str, stdout: &[u8]) -> Result<(), String> {
    match remote_digest(stdout) {
        Some(found) if found == expected => Ok(()),
        Some(found) => Err(found),
        None => Err("<none>".to_owned()),
    }
}

/// A local file problem, as the source of an `Io` error.
#[derive(Debug, thiserror::Error)]
#[error("cannot read local file {}", path.display())]
struct LocalFile {
    path: PathBuf,
    #[source]
    source: io::Error,
}

/// The remote helper's stderr, as the source of a `RemoteCommandFailed`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RemoteStderr(String);

impl Session {
    /// Streams `local` to `remote_tmp` on the host (as root via sudo when the
    /// host's privilege is `Sudo`), and verifies its sha256 there.
    pub async fn upload(
        &self,
        local: &Path,
        remote_tmp: &str,
        deadline: Duration,
    ) -> Result<Upload, SshError> {
        self.upload_with(local, remote_tmp, &upload_command(remote_tmp), deadline)
            .await
    }

    /// [`Session::upload`] by `cmd`: [`UPLOAD_SCRIPT`] with `$1` = `remote_tmp` (through
    /// [`upload_command`]), or that script with a function `after` put in front and the
    /// expected sha256 and `after`'s arguments following `$1`; what `after` printed comes
    /// back in [`Upload::after`].
    pub async fn upload_with(
        &self,
        local: &Path,
        remote_tmp: &str,
        cmd: &RemoteCommand,
        deadline: Duration,
    ) -> Result<Upload, SshError> {
        let started = Instant::now();
        let step = Step::Upload(remote_tmp.to_owned());
        let local_error = |source: io::Error| {
            let path = local.to_path_buf();
            self.error(step.clone(), SshErrorKind::Io)
                .with_source(LocalFile { path, source })
        };
        let file = tokio::fs::File::open(local).await.map_err(local_error)?;
        let ran = match self
            .run(cmd, step.clone(), deadline, FileInput { file })
            .await
        {
            Ok(ran) => ran,
            Err(e) => {
                if matches!(e.kind(), SshErrorKind::Io) {
                    self.remove(remote_tmp, CLEANUP_MIN).await;
                }
                return Err(e);
            }
        };
        let output = ran.output;
        if !output.success() {
            let kind = SshErrorKind::RemoteCommandFailed {
                status: output.status.to_string(),
            };
            let stderr = RemoteStderr(output.stderr_lossy().trim().to_owned());
            return Err(self.error(step, kind).with_source(stderr));
        }
        let Some(sent) = ran.fed else {
            // The command succeeded without taking all input: cannot happen
            // with `cat`, but never report such a file as uploaded.
            self.remove(remote_tmp, CLEANUP_MIN).await;
            let kind = SshErrorKind::RemoteCommandFailed {
                status: "stopped reading input".to_owned(),
            };
            return Err(self.error(step, kind));
        };
        match verify(&sent.sha256, &output.stdout) {
            Ok(()) => Ok(Upload {
                sha256: sent.sha256,
                bytes: sent.bytes,
                after: after_digest(&output.stdout),
            }),
            Err(found) => {
                let left = deadline.saturating_sub(started.elapsed()).max(CLEANUP_MIN);
                self.remove(remote_tmp, left).await;
                let kind = SshErrorKind::ChecksumMismatch {
                    expected: sent.sha256,
                    found,
                };
                Err(self.error(step, kind))
            }
        }
    }

    /// Best-effort removal of a bad upload.
    async fn remove(&self, remote_tmp: &str, deadline: Duration) {
        let cmd = RemoteCommand::script(REMOVE_SCRIPT, [remote_tmp])
            .privileged()
            .labelled(format!("remove {remote_tmp}"));
        let _ = self.exec(&cmd, deadline).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn hex_of_digest() {
        assert_eq!(hex(&Sha256::digest(b"")), EMPTY_SHA256);
    }

    #[test]
    fn verify_accepts_matching_sha256sum_output() {
        let out = format!("{EMPTY_SHA256}  -\n");
        assert_eq!(verify(EMPTY_SHA256, out.as_bytes()), Ok(()));
        let upper = out.to_ascii_uppercase();
        assert_eq!(verify(EMPTY_SHA256, upper.as_bytes()), Ok(()));
    }

    #[test]
    fn verify_reports_what_was_found() {
        let other = "a".repeat(64);
        let out = format!("{other}  -\n");
        assert_eq!(verify(EMPTY_SHA256, out.as_bytes()), Err(other));
        assert_eq!(verify(EMPTY_SHA256, b""), Err("<none>".to_owned()));
        assert_eq!(
            verify(EMPTY_SHA256, b"sha256sum: not found\n"),
            Err("<none>".to_owned())
        );
        // Only the first line holds the digest.
        let later = format!("x\n{EMPTY_SHA256}  -\n");
        assert_eq!(
            verify(EMPTY_SHA256, later.as_bytes()),
            Err("<none>".to_owned())
        );
    }

    #[test]
    fn what_follows_the_digest_line_is_after_s_output() {
        let out = format!("{EMPTY_SHA256}  -\ntest_rc 0\nend ok\n");
        assert_eq!(verify(EMPTY_SHA256, out.as_bytes()), Ok(()));
        assert_eq!(after_digest(out.as_bytes()), "test_rc 0\nend ok\n");
        assert_eq!(after_digest(b"abc  -"), "");
    }

    #[tokio::test]
    async fn chunks_cover_the_file_exactly() {
        let path = std::env::temp_dir().join(format!("ngssh-chunk-{}", std::process::id()));
        let data: Vec<u8> = (0..(CHUNK * 2 + 123)).map(|i| (i % 251) as u8).collect();
        assert!(std::fs::write(&path, &data).is_ok());
        let mut file = tokio::fs::File::open(&path).await.expect("opens");
        let mut total = Vec::new();
        loop {
            let Ok(chunk) = read_chunk(&mut file).await else {
                panic!("read failed")
            };
            if chunk.is_empty() {
                break;
            }
            assert!(chunk.len() == CHUNK || total.len() + chunk.len() == data.len());
            total.extend_from_slice(&chunk);
        }
        assert_eq!(total, data);
        let _ = std::fs::remove_file(&path);
    }
}
