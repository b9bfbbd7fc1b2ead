//! Preparing hosts ahead of their turn: while a wave switches, the hosts after it are
//! connected, locked, checked and given their staged binary (nothing live changes), at most
//! `forks` hosts held at once counting the ones switching; a stopped run lets every prepared
//! host go.

use std::collections::{HashMap, HashSet};

use futures::future::LocalBoxFuture;
use futures::stream::FuturesUnordered;

use super::seams::{Executor, Readiness};

/// How many waves after the one switching are prepared. One is not enough across a WAN: a
/// preparation (connect, lock, probe, upload, `-t`) takes about as long as a wave's switch, so
/// the next wave's first hosts would still be preparing when its turn comes. Further ahead,
/// preparations only hold locks longer (`--forks` bounds them in any case).
pub(super) const WAVES_AHEAD: usize = 2;

/// Where a host stands in its preparation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prep {
    Preparing,
    Ready,
    /// Could not be prepared: its turn runs it whole.
    NotReady,
}

pub(super) struct Ahead<'a> {
    executor: &'a dyn Executor,
    /// Every host of the plan, in the order their turns come.
    order: &'a [usize],
    cursor: usize,
    /// How far in `order` preparation may go: the end of the [`WAVES_AHEAD`]th wave after the
    /// one switching.
    horizon: usize,
    /// Hosts held at once (switching, preparing or prepared); zero: no preparation.
    limit: usize,
    state: HashMap<usize, Prep>,
    /// Hosts whose turn has come (they are never prepared after that).
    started: HashSet<usize>,
    pub(super) preparing: FuturesUnordered<LocalBoxFuture<'a, (usize, Readiness)>>,
    pub(super) releasing: FuturesUnordered<LocalBoxFuture<'a, ()>>,
}

impl<'a> Ahead<'a> {
    pub(super) fn new(executor: &'a dyn Executor, order: &'a [usize], limit: usize) -> Ahead<'a> {
        Ahead {
            executor,
            order,
            cursor: 0,
            horizon: 0,
            limit,
            state: HashMap::new(),
            started: HashSet::new(),
            preparing: FuturesUnordered::new(),
            releasing: FuturesUnordered::new(),
        }
    }

    /// Hosts being prepared or prepared and waiting for their turn.
    fn held(&self) -> usize {
        self.state
            .values()
            .filter(|p| matches!(p, Prep::Preparing | Prep::Ready))
            .count()
    }

    /// Lets preparation go as far as `end` in turn order (the end of the [`WAVES_AHEAD`]th
    /// wave after the one switching).
    pub(super) fn reach(&mut self, end: usize) {
        self.horizon = self.horizon.max(end);
    }

    /// Starts preparing the next hosts in turn order while fewer than `limit` hosts are held,
    /// `switching` of them by their turns.
    pub(super) fn fill(&mut self, switching: usize) {
        while switching + self.held() < self.limit && self.cursor < self.horizon {
            let Some(&h) = self.order.get(self.cursor) else {
                return;
            };
            self.cursor += 1;
            if self.started.contains(&h) || self.state.contains_key(&h) {
                continue;
            }
            self.state.insert(h, Prep::Preparing);
            let executor = self.executor;
            self.preparing
                .push(Box::pin(async move { (h, executor.prepare(h).await) }));
        }
    }

    /// Whether `h` is being prepared now (its turn waits for that).
    pub(super) fn is_preparing(&self, h: usize) -> bool {
        self.state.get(&h) == Some(&Prep::Preparing)
    }

    /// `h`'s turn came: whether it was prepared.
    pub(super) fn take(&mut self, h: usize) -> Readiness {
        self.started.insert(h);
        match self.state.remove(&h) {
            Some(Prep::Ready) => Readiness::Ready,
            _ => Readiness::NotReady,
        }
    }

    /// A preparation ended; a run that has stopped lets the host go at once.
    pub(super) fn prepared(&mut self, h: usize, readiness: Readiness, stopping: Stopping) {
        let ready = readiness == Readiness::Ready;
        if ready && stopping == Stopping::Yes {
            self.state.remove(&h);
            self.release(h);
            return;
        }
        let prep = if ready { Prep::Ready } else { Prep::NotReady };
        self.state.insert(h, prep);
    }

    fn release(&mut self, h: usize) {
        let executor = self.executor;
        self.releasing.push(executor.release(h));
    }

    /// Lets every prepared host go (the run stopped, or ended).
    pub(super) fn release_all(&mut self) {
        let ready: Vec<usize> = self
            .state
            .iter()
            .filter(|(_, p)| **p == Prep::Ready)
            .map(|(h, _)| *h)
            .collect();
        for h in ready {
            self.state.remove(&h);
            self.release(h);
        }
    }

    /// Lets every prepared host go while the run waits (a pause, a soak, the canary
    /// question): a prepared host would hold its lock, and its observation would age, for as
    /// long as the wait. Those whose turn has not come may be prepared again afterwards.
    pub(super) fn let_go(&mut self) {
        self.release_all();
        self.cursor = 0;
        self.horizon = 0;
    }

    /// Nothing being prepared or released.
    pub(super) fn idle(&self) -> bool {
        self.preparing.is_empty() && self.releasing.is_empty()
    }
}

/// Whether the run is stopping (no more turns will come).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stopping {
    Yes,
    No,
}
