//! The operator, as the dispatcher hears them: Ctrl-C and SIGTERM as a channel of signals,
//! and a yes/no question on the terminal.

use futures::future::LocalBoxFuture;
use tokio::sync::{mpsc, oneshot};

use super::event::Sink;
use super::seams::Operator;

/// Forwards every SIGINT and SIGTERM for the life of the runtime.
pub fn listen() -> mpsc::UnboundedReceiver<()> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        loop {
            tokio::select! {
                r = tokio::signal::ctrl_c() => if r.is_err() { return },
                _ = term.recv() => {}
            }
            if tx.send(()).is_err() {
                return;
            }
        }
    });
    rx
}

/// Asks on the terminal, through the reporter (above the progress bars); only `y` or `yes`
/// goes on. The read runs on its own thread, so a run that stops meanwhile does not wait for
/// a line that never comes.
pub struct TerminalOperator<'a> {
    pub sink: &'a dyn Sink,
}

impl Operator for TerminalOperator<'_> {
    fn ask(&self, question: &str) -> LocalBoxFuture<'static, bool> {
        self.sink.say(question);
        let (tx, rx) = oneshot::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let yes = std::io::stdin().read_line(&mut line).is_ok()
                && matches!(line.trim().to_lowercase().as_str(), "y" | "yes");
            let _ = tx.send(yes);
        });
        Box::pin(async move { rx.await.unwrap_or(false) })
    }
}
