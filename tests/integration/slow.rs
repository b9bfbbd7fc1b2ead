//! Slow clients: downloads of a lab host's 64 MiB `/big`, each read at a fixed slow pace in a
//! thread of its own, so that an nginx worker is busy with it for as long as it runs (an old
//! worker after WINCH or QUIT lingers until its download is done: the lab sets no
//! `worker_shutdown_timeout`). Traffic goes only to the lab addresses given.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use tokio::net::TcpSocket;

use crate::load::handshake;

/// The size of the lab's `/big`.
pub const BIG: u64 = 64 * 1024 * 1024;

/// A pace at which `/big` takes about `secs` seconds.
pub const fn rate_for(secs: u64) -> u64 {
    BIG / secs
}

/// The client's receive buffer: small, so the kernel does not read ahead for the client and
/// the worker's progress follows the client's pace (the server's send buffer still holds a
/// few MiB, so a worker is done a little before its client).
const RECEIVE_BUFFER: u32 = 64 * 1024;

/// How one download ended.
#[derive(Clone, Debug)]
pub struct Download {
    pub addr: String,
    /// The response status (0 when no response came).
    pub status: u16,
    /// The `Server` header: which nginx version served the download.
    pub server: String,
    /// Body bytes received.
    pub bytes: u64,
    /// Status 200 and every byte of the 64 MiB, with no error.
    pub complete: bool,
    pub error: Option<String>,
    pub elapsed: Duration,
}

#[derive(Default)]
struct Progress {
    bytes: AtomicU64,
    /// The response headers arrived: a worker is serving the download.
    answered: AtomicBool,
    done: AtomicBool,
}

/// Downloads in flight; [`SlowDownloads::finish`] waits for them.
pub struct SlowDownloads {
    downloads: Vec<(Arc<Progress>, JoinHandle<Download>)>,
}

impl SlowDownloads {
    /// Starts one download of `/big` per address (`addr:port`), each read at `rate` bytes per
    /// second. Each gives up (and says so in its error) after three times its expected
    /// duration plus 30 s, so [`finish`](Self::finish) is bounded.
    pub fn start(addrs: &[String], rate: u64) -> SlowDownloads {
        assert!(rate > 0, "a download rate");
        let downloads = addrs
            .iter()
            .map(|addr| {
                let progress = Arc::new(Progress::default());
                let p = Arc::clone(&progress);
                let addr = addr.clone();
                let thread = std::thread::spawn(move || {
                    let started = Instant::now();
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    let limit = Duration::from_secs(3 * BIG / rate + 30);
                    let got = runtime.block_on(async {
                        tokio::time::timeout(limit, download(&addr, rate, &p))
                            .await
                            .unwrap_or_else(|_| Err(format!("not done after {limit:?}")))
                    });
                    p.done.store(true, Ordering::SeqCst);
                    let bytes = p.bytes.load(Ordering::SeqCst);
                    let (status, server, error) = match got {
                        Ok((status, server)) => (status, server, None),
                        Err(e) => (0, String::new(), Some(e)),
                    };
                    Download {
                        complete: error.is_none() && status == 200 && bytes == BIG,
                        addr,
                        status,
                        server,
                        bytes,
                        error,
                        elapsed: started.elapsed(),
                    }
                });
                (progress, thread)
            })
            .collect();
        SlowDownloads { downloads }
    }

    /// Waits until every download has its response headers, that is, a worker serves each of
    /// them. False when `limit` passes first, or a download ended before.
    pub fn wait_answered(&self, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self
                .downloads
                .iter()
                .all(|(p, _)| p.answered.load(Ordering::SeqCst))
            {
                return true;
            }
            if self
                .downloads
                .iter()
                .any(|(p, _)| p.done.load(Ordering::SeqCst))
            {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// How many downloads are still running.
    pub fn running(&self) -> usize {
        self.downloads
            .iter()
            .filter(|(p, _)| !p.done.load(Ordering::SeqCst))
            .count()
    }

    /// Bytes received so far, per download.
    pub fn bytes(&self) -> Vec<u64> {
        self.downloads
            .iter()
            .map(|(p, _)| p.bytes.load(Ordering::SeqCst))
            .collect()
    }

    /// Waits for every download to end (each is bounded by its own deadline) and returns how
    /// each ended, in the order they were started.
    pub fn finish(self) -> Vec<Download> {
        self.downloads
            .into_iter()
            .map(|(_, thread)| thread.join().expect("download thread"))
            .collect()
    }
}

/// One download, paced: after every chunk, sleep until the bytes so far are due at `rate`.
/// Returns the status and the Server header; the body bytes are counted in `progress`.
async fn download(addr: &str, rate: u64, progress: &Progress) -> Result<(u16, String), String> {
    let target: std::net::SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let socket = if target.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| format!("socket: {e}"))?;
    socket
        .set_recv_buffer_size(RECEIVE_BUFFER)
        .map_err(|e| format!("SO_RCVBUF: {e}"))?;
    let stream = tokio::time::timeout(Duration::from_secs(5), socket.connect(target))
        .await
        .map_err(|_| format!("connect {addr}: timeout"))?
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let mut sender = handshake(stream, addr).await?;
    let req = http::Request::get("/big")
        .header(http::header::HOST, addr)
        .header(http::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
        .await
        .map_err(|_| format!("{addr}: no response in 10s"))?
        .map_err(|e| format!("{addr}: {e}"))?;
    progress.answered.store(true, Ordering::SeqCst);
    let status = resp.status().as_u16();
    let server = resp
        .headers()
        .get(http::header::SERVER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut body = resp.into_body();
    let started = Instant::now();
    let mut got: u64 = 0;
    loop {
        // A stream that stalls for 30 s is broken, not slow.
        let frame = tokio::time::timeout(Duration::from_secs(30), body.frame())
            .await
            .map_err(|_| format!("{addr}: no data for 30s after {got} bytes"))?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| format!("{addr}: body after {got} bytes: {e}"))?;
        if let Ok(data) = frame.into_data() {
            got += data.len() as u64;
            progress.bytes.store(got, Ordering::SeqCst);
            let due = Duration::from_secs_f64(got as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
    Ok((status, server))
}

fn signal(pid: u32, sig: &str) {
    let sent = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status();
    assert!(sent.is_ok_and(|s| s.success()), "kill -{sig} {pid}");
}

/// Titles of the children of `pid`.
fn children(pid: u32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|c| {
            std::fs::read(format!("/proc/{c}/cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default()
        })
        .collect()
}

/// The helper against nginx alone (signals by hand, no ngfleet): a paced download of `/big`
/// keeps the old worker through USR2, WINCH and QUIT, completes in full from the old build,
/// and the old master leaves when it is done.
#[test]
fn a_slow_download_keeps_the_old_worker_until_it_is_done() {
    use crate::lab::{alive, wait_until};

    let lab = lab!(1);
    let h = lab.host("lab-01").clone();
    let downloads = SlowDownloads::start(&[h.http()], rate_for(12));
    assert!(downloads.wait_answered(Duration::from_secs(10)), "answered");
    let old = h.master_pid().expect("master");
    signal(old, "USR2");
    assert!(
        wait_until(Duration::from_secs(5), || h.masters().len() == 2
            && h.master_pid().is_some_and(|p| p != old)),
        "a new master: {:?}",
        h.masters()
    );
    let new = h.master_pid().expect("new master");
    signal(old, "WINCH");
    std::thread::sleep(Duration::from_secs(1));
    let kids = children(old);
    assert!(
        kids.iter()
            .any(|t| t.starts_with("nginx: worker process is shutting down")),
        "the old worker lingers for the download: {kids:?}"
    );
    signal(old, "QUIT");
    std::thread::sleep(Duration::from_secs(1));
    assert!(alive(old), "the old master waits for its worker");
    assert_eq!(downloads.running(), 1);
    let part = downloads.bytes()[0];
    assert!(part < BIG / 2, "paced, not done at once: {part}");
    let done = downloads.finish();
    let d = &done[0];
    assert!(d.complete, "{d:?}");
    assert_eq!(
        (d.addr.as_str(), d.status, d.error.as_deref()),
        (h.http().as_str(), 200, None)
    );
    assert_eq!(
        d.server,
        format!("nginx/{}", lab.version("nginx-old")),
        "{d:?}"
    );
    assert!(
        d.elapsed >= Duration::from_secs(10) && d.elapsed < Duration::from_secs(40),
        "about 12 s at the pace asked: {d:?}"
    );
    assert!(
        wait_until(Duration::from_secs(10), || !alive(old)),
        "the old master leaves after its last download"
    );
    assert_eq!(h.masters(), [new]);
}
