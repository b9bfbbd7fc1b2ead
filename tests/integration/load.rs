//! Zero dropped requests: a real HTTP load (hyper; keep-alive and new connections, and slow
//! downloads in flight at WINCH) on lab hosts while `ngfleet roll` and `ngfleet rollback` run,
//! and the same load through a plain stop-and-start, which must show the drops.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::harness::{Output, rollout};
use crate::lab::Lab;

/// Every request, counted once, by outcome.
#[derive(Default)]
pub struct Stats {
    pub sent: AtomicU64,
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    /// Requests re-sent because a reused keep-alive connection was closed by the server before
    /// any byte of a response (RFC 9112 9.3.1 allows a client to retry an idempotent request
    /// then; browsers and proxies do). Not failures, but counted and reported.
    pub retried: AtomicU64,
    pub errors: Mutex<Vec<String>>,
    /// The version each 2xx answer came from, in order.
    pub versions: Mutex<Vec<String>>,
}

impl Stats {
    fn fail(&self, what: String) {
        self.sent.fetch_add(1, Ordering::SeqCst);
        self.failed.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut e) = self.errors.lock()
            && e.len() < 20
        {
            e.push(what);
        }
    }

    fn answered(&self, status: u16, body: &str) {
        self.sent.fetch_add(1, Ordering::SeqCst);
        if (200..300).contains(&status) {
            self.ok.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut v) = self.versions.lock() {
                v.push(body.split_whitespace().next().unwrap_or("").to_owned());
            }
        } else {
            self.fail(format!("status {status}"));
        }
    }

    pub fn mark(&self) -> usize {
        self.versions.lock().map(|v| v.len()).unwrap_or(0)
    }

    /// Versions answered since `mark`.
    pub fn versions_since(&self, mark: usize) -> Vec<String> {
        self.versions
            .lock()
            .map(|v| v[mark.min(v.len())..].to_vec())
            .unwrap_or_default()
    }

    pub fn report(&self) -> String {
        format!(
            "sent {} ok {} failed {} retried {} errors {:?}",
            self.sent.load(Ordering::SeqCst),
            self.ok.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
            self.retried.load(Ordering::SeqCst),
            self.errors.lock().map(|e| e.clone()).unwrap_or_default()
        )
    }
}

pub struct Load {
    stop: Arc<AtomicBool>,
    pub stats: Arc<Stats>,
    tasks: Vec<JoinHandle<()>>,
}

pub type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(addr: &str) -> Result<Sender, String> {
    let stream = tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connect {addr}: timeout"))?
        .map_err(|e| format!("connect {addr}: {e}"))?;
    handshake(stream, addr).await
}

/// An HTTP/1 client on a connected stream; the connection is driven by a spawned task.
pub async fn handshake(stream: TcpStream, addr: &str) -> Result<Sender, String> {
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake {addr}: {e}"))?;
    tokio::spawn(conn);
    Ok(sender)
}

enum Sent {
    Answer(u16, String),
    /// The connection closed before any response byte.
    ClosedBeforeResponse(String),
    Error(String),
}

async fn get(sender: &mut Sender, addr: &str, close: bool) -> Sent {
    let mut req = http::Request::get("/").header(http::header::HOST, addr);
    if close {
        req = req.header(http::header::CONNECTION, "close");
    }
    let Ok(req) = req.body(Empty::<Bytes>::new()) else {
        return Sent::Error("request".into());
    };
    match tokio::time::timeout(Duration::from_secs(5), sender.send_request(req)).await {
        Err(_) => Sent::Error(format!("{addr}: timeout")),
        Ok(Err(e))
            if e.is_incomplete_message() || e.is_canceled() || e.is_closed() || reset(&e) =>
        {
            Sent::ClosedBeforeResponse(format!("{addr}: {e}"))
        }
        Ok(Err(e)) => Sent::Error(format!("{addr}: {e}")),
        Ok(Ok(resp)) => {
            let status = resp.status().as_u16();
            match resp.into_body().collect().await {
                Ok(body) => Sent::Answer(
                    status,
                    String::from_utf8_lossy(&body.to_bytes()).into_owned(),
                ),
                Err(e) => Sent::Error(format!("{addr}: body: {e}")),
            }
        }
    }
}

/// A connection reset before any response byte: the server closed an idle keep-alive
/// connection (nginx does at graceful shutdown) as the request arrived, so the kernel answered
/// the unread request with RST. Like a closed connection, this is retried on a reused
/// connection (RFC 9112 §9.3.1: the request was not processed); never on a new one.
fn reset(e: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::ConnectionReset;
        }
        source = s.source();
    }
    false
}

/// Requests on one keep-alive connection, reconnecting when the server closes it.
async fn keep_alive(addr: String, stats: Arc<Stats>, stop: Arc<AtomicBool>) {
    let mut conn: Option<Sender> = None;
    let mut reused = false;
    while !stop.load(Ordering::SeqCst) {
        if conn.as_ref().is_none_or(|c| c.is_closed()) {
            match connect(&addr).await {
                Ok(c) => {
                    conn = Some(c);
                    reused = false;
                }
                Err(e) => {
                    stats.fail(e);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            }
        }
        let Some(sender) = conn.as_mut() else {
            continue;
        };
        if sender.ready().await.is_err() {
            conn = None;
            continue;
        }
        match get(sender, &addr, false).await {
            Sent::Answer(status, body) => {
                stats.answered(status, &body);
                reused = true;
            }
            Sent::ClosedBeforeResponse(e) if reused => {
                let _ = e;
                stats.retried.fetch_add(1, Ordering::SeqCst);
                conn = None;
            }
            Sent::ClosedBeforeResponse(e) | Sent::Error(e) => {
                stats.fail(e);
                conn = None;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every request on a new connection.
async fn new_connections(addr: String, stats: Arc<Stats>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        match connect(&addr).await {
            Err(e) => stats.fail(e),
            Ok(mut sender) => match get(&mut sender, &addr, true).await {
                Sent::Answer(status, body) => stats.answered(status, &body),
                Sent::ClosedBeforeResponse(e) | Sent::Error(e) => stats.fail(e),
            },
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

impl Load {
    /// Two keep-alive clients and two new-connection clients per address.
    pub fn start(addrs: &[String]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let mut tasks = Vec::new();
        for addr in addrs {
            for _ in 0..2 {
                tasks.push(tokio::spawn(keep_alive(
                    addr.clone(),
                    Arc::clone(&stats),
                    Arc::clone(&stop),
                )));
                tasks.push(tokio::spawn(new_connections(
                    addr.clone(),
                    Arc::clone(&stats),
                    Arc::clone(&stop),
                )));
            }
        }
        Load { stop, stats, tasks }
    }

    pub async fn finish(self) -> Arc<Stats> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            let _ = t.await;
        }
        self.stats
    }
}

/// A slow download: (status, bytes, Server header).
pub async fn slow(addr: String) -> Result<(u16, usize, String), String> {
    let mut sender = connect(&addr).await?;
    let req = http::Request::get("/slow?rate=512k")
        .header(http::header::HOST, addr.as_str())
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let server = resp
        .headers()
        .get(http::header::SERVER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("slow body: {e}"))?;
    Ok((status, body.to_bytes().len(), server))
}

fn addrs(lab: &Lab) -> Vec<String> {
    std::fs::read_to_string(lab.dir.join("hosts.tsv"))
        .expect("hosts.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            format!("{}:{}", f[2], f[4])
        })
        .collect()
}

/// `ngfleet VERB` against the lab (`rollback` with `--yes`: more than one host, no terminal),
/// run on this worker thread while the load's tasks go on on the others.
fn ngfleet(lab: &Lab, verb: &str, spec: &str) -> Output {
    let test = rollout(lab, spec, verb);
    tokio::task::block_in_place(|| test.run())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn roll_and_rollback_under_load_drop_no_request() {
    let lab = lab!(3);
    let old = lab.version("nginx-old");
    let new = lab.version("nginx-new");
    let spec = "hosts: lab\ncanary: {hosts: 1, then: continue}\nbatches: [\"100%\"]\nparallel: 1\ngates:\n  - http: {url: \"http://127.0.0.1:{{ lab_http_port }}/health\", body: ok}\n";
    let names: Vec<String> = lab.hosts.iter().map(|h| h.name.clone()).collect();
    let targets = addrs(&lab);
    let slow_size = std::fs::metadata(lab.dir.join("share/slow.bin"))
        .map(|m| m.len() as usize)
        .unwrap_or(0);

    for (verb, from, to) in [("roll", &old, &new), ("rollback", &new, &old)] {
        let load = Load::start(&targets);
        tokio::time::sleep(Duration::from_millis(800)).await;
        let before = load.stats.versions_since(0);
        assert!(
            !before.is_empty() && before.iter().all(|v| v == from),
            "{verb}: before: {before:?}"
        );
        // A slow download on the last host, in flight when its WINCH comes.
        let slow = tokio::spawn(slow(targets[2].clone()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let out = ngfleet(&lab, verb, spec);
        out.expect_result("succeeded");
        let list = if verb == "roll" {
            "upgraded"
        } else {
            "rolled_back"
        };
        assert_eq!(out.hosts(list), names, "{verb}: {}", out.show());
        let mark = load.stats.mark();
        tokio::time::sleep(Duration::from_millis(800)).await;
        let stats = load.finish().await;
        let report = stats.report();
        eprintln!("{verb}: {report}");
        assert_eq!(stats.failed.load(Ordering::SeqCst), 0, "{verb}: {report}");
        assert!(stats.ok.load(Ordering::SeqCst) > 100, "{verb}: {report}");
        let after = stats.versions_since(mark);
        assert!(
            !after.is_empty() && after.iter().all(|v| v == to),
            "{verb}: after: {after:?}"
        );
        let (status, bytes, server) = slow
            .await
            .expect("join")
            .expect("the slow download completes");
        assert_eq!((status, bytes), (200, slow_size), "{verb}");
        assert_eq!(
            server,
            format!("nginx/{from}"),
            "{verb}: served to the end by the old worker"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plain_stop_and_start_drops_requests() {
    let lab = lab!(1);
    let h = lab.host("lab-01").clone();
    let targets = addrs(&lab);
    let load = Load::start(&targets);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bin = h.dir.join("sbin/nginx").display().to_string();
    let prefix = format!("{}/", h.dir.join("nginx").display());
    let script = format!(
        "cp {new} {bin}.tmp && mv -f {bin}.tmp {bin} && {bin} -p {prefix} -c conf/nginx.conf -s stop; sleep 0.5; {bin} -p {prefix} -c conf/nginx.conf",
        new = lab.dir.join("versions/nginx-new").display()
    );
    lab.run(&["exec", "lab-01", "--", "sh", "-c", &script]);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let stats = load.finish().await;
    eprintln!("stop and start: {}", stats.report());
    assert!(
        stats.failed.load(Ordering::SeqCst) > 0,
        "the test must see drops: {}",
        stats.report()
    );
}
