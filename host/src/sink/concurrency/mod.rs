//! How many requests the sink has in flight: pinned (`concurrency = N`) or adaptive (the
//! default), found from the endpoint's answers between 1 and `max_concurrency` by [`aimd`].
//!
//! Every HTTP request of the sink holds a [`Permit`] from the [`Limiter`] while it is in
//! flight (not while it backs off before a retry), and gives back what its answer said
//! ([`Feedback`]). The limit's changes are logged at debug level with the round trips that
//! caused them; [`ConcurrencyStats`] goes to the run report and `/metrics`.

pub mod aimd;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use aimd::{Aimd, Feedback};

/// The adaptive limit's starting point (the old fixed default): a fast endpoint is never
/// slower than before while the limit is found.
pub const INITIAL_CONCURRENCY: usize = 4;

/// How the limit is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Exactly this many requests in flight.
    Fixed(usize),
    /// Found from the answers, between 1 and `max`.
    Adaptive { max: usize },
}

impl Mode {
    /// The most requests ever in flight.
    pub fn max(self) -> usize {
        match self {
            Mode::Fixed(n) => n,
            Mode::Adaptive { max } => max,
        }
    }
}

/// What the limiter did, for the run report and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConcurrencyStats {
    /// `true` when the limit was adaptive, `false` when pinned.
    pub adaptive: bool,
    /// The limit at the end.
    pub limit: usize,
    /// The most it may be (`max_concurrency`, or the pinned value).
    pub max: usize,
    /// The highest limit reached.
    pub highest: usize,
    /// Times the limit went up / down.
    pub increases: u64,
    pub decreases: u64,
    /// Round trips of 2xx answers: how many, and their mean in milliseconds.
    pub rtt_samples: u64,
    pub rtt_mean_ms: f64,
}

impl ConcurrencyStats {
    /// Adds another limiter's figures (several sinks of one process): counts add up, the
    /// limits and the mean are the other's when it has samples.
    pub fn merge(&mut self, other: &ConcurrencyStats) {
        let samples = self.rtt_samples + other.rtt_samples;
        if samples > 0 {
            self.rtt_mean_ms = (self.rtt_mean_ms * self.rtt_samples as f64
                + other.rtt_mean_ms * other.rtt_samples as f64)
                / samples as f64;
        }
        self.rtt_samples = samples;
        self.increases += other.increases;
        self.decreases += other.decreases;
        self.adaptive = other.adaptive;
        self.limit = other.limit;
        self.max = other.max;
        self.highest = self.highest.max(other.highest);
    }
}

/// Hands out permits to send a request; shared by every delivery of one sink.
#[derive(Debug, Clone)]
pub struct Limiter {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    mode: Mode,
    semaphore: Arc<Semaphore>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    aimd: Aimd,
    in_flight: usize,
    /// Permits to retire as they come back (the limit went down while they were out).
    debt: usize,
    /// Counters; its `limit` is filled from `aimd` when read.
    stats: ConcurrencyStats,
}

impl Limiter {
    pub fn new(mode: Mode) -> Self {
        let (aimd, adaptive) = match mode {
            Mode::Fixed(n) => (Aimd::new(n, n), false),
            Mode::Adaptive { max } => (Aimd::new(INITIAL_CONCURRENCY, max), true),
        };
        let limit = aimd.limit();
        Self {
            inner: Arc::new(Shared {
                mode,
                semaphore: Arc::new(Semaphore::new(limit)),
                state: Mutex::new(State {
                    aimd,
                    in_flight: 0,
                    debt: 0,
                    stats: ConcurrencyStats {
                        adaptive,
                        limit,
                        max: mode.max(),
                        highest: limit,
                        ..ConcurrencyStats::default()
                    },
                }),
            }),
        }
    }

    /// The most requests ever in flight.
    pub fn max(&self) -> usize {
        self.inner.mode.max()
    }

    /// Waits for room for one more request. The caller races this against its stop signal.
    pub async fn acquire(&self) -> Permit {
        // The semaphore is never closed, so this cannot fail; if it ever were, sending
        // without a permit is the harmless fallback.
        let permit = Arc::clone(&self.inner.semaphore).acquire_owned().await.ok();
        let mut state = self.inner.lock();
        state.in_flight += 1;
        let in_flight = state.in_flight;
        state.aimd.started(in_flight);
        Permit {
            limiter: Arc::clone(&self.inner),
            permit,
            started: Instant::now(),
        }
    }

    /// The limit now.
    pub fn limit(&self) -> usize {
        self.inner.lock().aimd.limit()
    }

    /// The figures so far.
    pub fn stats(&self) -> ConcurrencyStats {
        let state = self.inner.lock();
        ConcurrencyStats {
            limit: state.aimd.limit(),
            ..state.stats.clone()
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Room for one request; give it back with [`Permit::answered`] (dropping it gives it back
/// without feedback: a request abandoned by a stop).
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<Shared>,
    permit: Option<OwnedSemaphorePermit>,
    started: Instant,
}

impl Permit {
    /// When the request started (after the permit was granted).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The request got its answer (or failed): adjusts an adaptive limit.
    pub fn answered(mut self, feedback: Feedback) {
        let shared = Arc::clone(&self.limiter);
        let mut state = shared.lock();
        if let Some(rtt) = feedback.rtt {
            let n = state.stats.rtt_samples as f64;
            state.stats.rtt_mean_ms =
                (state.stats.rtt_mean_ms * n + rtt.as_secs_f64() * 1000.0) / (n + 1.0);
            state.stats.rtt_samples += 1;
        }
        if let Mode::Adaptive { .. } = shared.mode
            && let Some(change) = state.aimd.answered(Instant::now(), feedback)
        {
            tracing::debug!(
                from = change.from,
                to = change.to,
                window_rtt_ms = change.window_rtt.map(|d| d.as_secs_f64() * 1000.0),
                mean_rtt_ms = change.mean_rtt.as_secs_f64() * 1000.0,
                back_pressure = change.back_pressure,
                "request concurrency {} -> {}",
                change.from,
                change.to
            );
            if change.to > change.from {
                state.stats.increases += 1;
                let more = change.to - change.from;
                let repaid = more.min(state.debt);
                state.debt -= repaid;
                shared.semaphore.add_permits(more - repaid);
            } else {
                state.stats.decreases += 1;
                state.debt += change.from - change.to;
            }
            state.stats.highest = state.stats.highest.max(change.to);
        }
        Self::give_back(&mut state, self.permit.take());
    }

    fn give_back(state: &mut State, permit: Option<OwnedSemaphorePermit>) {
        state.in_flight = state.in_flight.saturating_sub(1);
        if let Some(permit) = permit
            && state.debt > 0
        {
            state.debt -= 1;
            permit.forget();
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            let shared = Arc::clone(&self.limiter);
            let mut state = shared.lock();
            Self::give_back(&mut state, Some(permit));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const OK: Feedback = Feedback {
        rtt: Some(Duration::from_millis(5)),
        back_pressure: false,
    };

    #[tokio::test]
    async fn a_pinned_limit_grants_exactly_n_permits_and_never_moves() {
        let l = Limiter::new(Mode::Fixed(2));
        let a = l.acquire().await;
        let b = l.acquire().await;
        let third = tokio::time::timeout(Duration::from_millis(50), l.acquire()).await;
        assert!(third.is_err(), "a third request waits");
        a.answered(Feedback {
            rtt: None,
            back_pressure: true,
        });
        let c = l.acquire().await;
        drop((b, c));
        let s = l.stats();
        assert_eq!((s.adaptive, s.limit, s.max, s.decreases), (false, 2, 2, 0));
    }

    #[tokio::test]
    async fn an_adaptive_limit_starts_at_the_initial_value_capped_by_the_max() {
        assert_eq!(
            Limiter::new(Mode::Adaptive { max: 64 }).stats().limit,
            INITIAL_CONCURRENCY
        );
        let l = Limiter::new(Mode::Adaptive { max: 2 });
        assert_eq!((l.stats().limit, l.max()), (2, 2));
    }

    #[tokio::test]
    async fn a_decrease_retires_a_permit_and_holds_the_lowered_limit() {
        let l = Limiter::new(Mode::Adaptive { max: 64 });
        let mut held = Vec::new();
        for _ in 0..INITIAL_CONCURRENCY {
            held.push(l.acquire().await);
        }
        // Prime the round-trip mean, then push back.
        held.pop().unwrap().answered(OK);
        held.push(l.acquire().await);
        held.pop().unwrap().answered(Feedback {
            rtt: None,
            back_pressure: true,
        });
        let s = l.stats();
        assert_eq!((s.limit, s.decreases), (INITIAL_CONCURRENCY - 1, 1));
        // The permit that pushed back was retired: three still out at a limit of three.
        assert_eq!(held.len(), INITIAL_CONCURRENCY - 1);
        let more = tokio::time::timeout(Duration::from_millis(50), l.acquire()).await;
        assert!(more.is_err(), "at the lowered limit");
        held.pop();
        let next = tokio::time::timeout(Duration::from_secs(5), l.acquire()).await;
        assert!(next.is_ok(), "a returned permit frees room");
    }
}
