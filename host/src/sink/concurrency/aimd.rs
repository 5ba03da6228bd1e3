//! The adaptive limit's controller, pure (time is passed in): additive increase while round
//! trips stay near their running mean, multiplicative decrease on back pressure or when they
//! rise — the scheme of Vector's adaptive request concurrency, whose constants it keeps.
//!
//! Decisions are taken once per *window*, one mean round trip long: the window's mean round
//! trip is compared with the running (exponentially weighted) mean and deviation of the
//! windows before it.
//! - **increase by 1** when the limit was reached in the window (there is evidence more
//!   requests were wanted), nothing pushed back, and the window's mean is at most the running
//!   mean;
//! - **decrease to `limit × DECREASE_RATIO`** (at least 1 less, never below 1) when the
//!   window's mean exceeds the running mean by more than `RTT_DEVIATION_SCALE` deviations
//!   (and by more than `RTT_RISE_MIN_FRACTION` of it and more than `RTT_RISE_MIN`: our
//!   additions to Vector's rule), and
//!   **at once** when an answer pushes back (429, 503, a timeout). An endpoint at its capacity
//!   answers 429 without delay, so waiting for the window's end would let every freed place
//!   be refilled and refused again — a storm of 429s. After a decrease, further back pressure
//!   is ignored for one mean round trip: the requests sent before it are still answering
//!   (one decrease per round trip, like TCP's congestion window).

use std::time::{Duration, Instant};

/// Factor applied to the limit on back pressure (Vector's default).
pub const DECREASE_RATIO: f64 = 0.9;
/// Weight of the newest window in the running round-trip mean (Vector's default).
pub const EWMA_ALPHA: f64 = 0.4;
/// Deviations above the running mean that count as "round trips rose" (Vector's default).
pub const RTT_DEVIATION_SCALE: f64 = 2.5;
/// Round trips must also rise by this fraction of their mean to count as risen: with steady
/// answers the deviation is tiny, and a scheduling hiccup of a few milliseconds on a busy
/// machine would otherwise read as an overloaded endpoint (measured: a 50 ms endpoint with
/// room for 24 was held near 15 by such decreases).
pub const RTT_RISE_MIN_FRACTION: f64 = 0.1;
/// ... and by at least this much: below it a rise is the client's own scheduling, not the
/// endpoint's queue. A local endpoint answers in well under a millisecond, and a busy 2-core
/// client reads some answers a few ms late; without this floor those read as load (measured:
/// the limit fell from 4 to 1–2 and the run was ~8 % slower than with 4 pinned). An
/// endpoint that is really overloaded adds far more than this, or answers 429/503, which
/// still shrinks the limit at once.
pub const RTT_RISE_MIN: Duration = Duration::from_millis(5);
/// Round trips within this of the running mean count as equal to it (the mean of equal
/// samples is not always exactly their value in floating point).
const RTT_TOLERANCE_SECS: f64 = 1e-6;

/// What one answer tells the controller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feedback {
    /// The request's round trip, when it is a fair sample (a 2xx answer).
    pub rtt: Option<Duration>,
    /// The endpoint pushed back: 429, 503 or a timeout.
    pub back_pressure: bool,
}

/// A change of the limit, for the log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub from: usize,
    pub to: usize,
    /// The window's mean round trip, if it had samples.
    pub window_rtt: Option<Duration>,
    /// The running mean before the window.
    pub mean_rtt: Duration,
    pub back_pressure: bool,
}

/// Exponentially weighted mean and variance.
#[derive(Debug, Clone, Copy, Default)]
struct Ewma {
    mean: f64,
    variance: f64,
    primed: bool,
}

impl Ewma {
    fn update(&mut self, x: f64) {
        if !self.primed {
            *self = Ewma {
                mean: x,
                variance: 0.0,
                primed: true,
            };
            return;
        }
        let diff = x - self.mean;
        let incr = EWMA_ALPHA * diff;
        self.mean += incr;
        self.variance = (1.0 - EWMA_ALPHA) * (self.variance + diff * incr);
    }
}

/// The controller of an adaptive limit between 1 and `max`.
#[derive(Debug, Clone)]
pub struct Aimd {
    limit: usize,
    max: usize,
    past: Ewma,
    window_sum: f64,
    window_samples: u32,
    window_ends: Option<Instant>,
    reached_limit: bool,
    /// Back pressure before this instant was already answered by a decrease.
    hold_until: Option<Instant>,
}

impl Aimd {
    /// Starts at `initial` (clamped to 1..=max).
    pub fn new(initial: usize, max: usize) -> Self {
        let max = max.max(1);
        Self {
            limit: initial.clamp(1, max),
            max,
            past: Ewma::default(),
            window_sum: 0.0,
            window_samples: 0,
            window_ends: None,
            reached_limit: false,
            hold_until: None,
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The running mean round trip (zero before the first sample).
    pub fn mean_rtt(&self) -> Duration {
        Duration::from_secs_f64(self.past.mean.max(0.0))
    }

    /// A request started with `in_flight` requests (itself included) in flight.
    pub fn started(&mut self, in_flight: usize) {
        if in_flight >= self.limit {
            self.reached_limit = true;
        }
    }

    /// An answer arrived at `now`. Returns the limit's change, if the window closed with one.
    pub fn answered(&mut self, now: Instant, feedback: Feedback) -> Option<Change> {
        if feedback.back_pressure {
            if self.hold_until.is_some_and(|until| now < until) {
                return None;
            }
            let from = self.limit;
            self.shrink();
            self.hold_until = Some(now + self.mean_rtt());
            self.open_window(now);
            return (self.limit != from).then(|| Change {
                from,
                to: self.limit,
                window_rtt: None,
                mean_rtt: self.mean_rtt(),
                back_pressure: true,
            });
        }
        if let Some(rtt) = feedback.rtt {
            self.window_sum += rtt.as_secs_f64();
            self.window_samples += 1;
        }
        let window_rtt =
            (self.window_samples > 0).then(|| self.window_sum / f64::from(self.window_samples));
        let Some(ends) = self.window_ends else {
            // The first sample primes the running mean and opens the first window.
            if let Some(rtt) = window_rtt {
                self.past.update(rtt);
                self.open_window(now);
            }
            return None;
        };
        if now < ends {
            return None;
        }
        let from = self.limit;
        let threshold = (self.past.variance.sqrt() * RTT_DEVIATION_SCALE)
            .max(self.past.mean * RTT_RISE_MIN_FRACTION)
            .max(RTT_RISE_MIN.as_secs_f64());
        let rose = window_rtt.is_some_and(|rtt| rtt > self.past.mean + threshold);
        if rose {
            self.shrink();
            self.hold_until = Some(now + self.mean_rtt());
        } else if self.reached_limit
            && self.limit < self.max
            && window_rtt.is_some_and(|rtt| rtt <= self.past.mean + RTT_TOLERANCE_SECS)
        {
            self.limit += 1;
        }
        let change = (self.limit != from).then(|| Change {
            from,
            to: self.limit,
            window_rtt: window_rtt.map(Duration::from_secs_f64),
            mean_rtt: self.mean_rtt(),
            back_pressure: false,
        });
        if let Some(rtt) = window_rtt {
            self.past.update(rtt);
        }
        self.open_window(now);
        change
    }

    /// `limit × DECREASE_RATIO`, at least 1 less, never below 1.
    fn shrink(&mut self) {
        if self.limit > 1 {
            let shrunk = (self.limit as f64 * DECREASE_RATIO) as usize;
            self.limit = shrunk.clamp(1, self.limit - 1);
        }
    }

    fn open_window(&mut self, now: Instant) {
        self.window_ends = Some(now + self.mean_rtt());
        self.window_sum = 0.0;
        self.window_samples = 0;
        self.reached_limit = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn ok(rtt_ms: u64) -> Feedback {
        Feedback {
            rtt: Some(MS * rtt_ms as u32),
            back_pressure: false,
        }
    }

    const PUSHED_BACK: Feedback = Feedback {
        rtt: None,
        back_pressure: true,
    };

    /// Runs `windows` windows of 50 ms answers with the limit reached in each.
    fn steady(c: &mut Aimd, t: &mut Instant, windows: usize, rtt_ms: u64) {
        for _ in 0..windows {
            c.started(c.limit());
            *t += MS * rtt_ms as u32;
            c.answered(*t, ok(rtt_ms));
        }
    }

    #[test]
    fn steady_round_trips_with_the_limit_reached_add_one_per_window_up_to_the_max() {
        let mut c = Aimd::new(4, 10);
        let mut t = Instant::now();
        c.answered(t, ok(50)); // primes
        steady(&mut c, &mut t, 3, 50);
        assert_eq!(c.limit(), 7);
        steady(&mut c, &mut t, 20, 50);
        assert_eq!(c.limit(), 10, "never above the max");
    }

    #[test]
    fn no_increase_without_evidence_that_more_requests_were_wanted() {
        let mut c = Aimd::new(4, 10);
        let mut t = Instant::now();
        c.answered(t, ok(50));
        for _ in 0..5 {
            c.started(2); // below the limit
            t += MS * 50;
            c.answered(t, ok(50));
        }
        assert_eq!(c.limit(), 4);
    }

    #[test]
    fn back_pressure_shrinks_the_limit_by_the_ratio_and_at_least_one_never_below_one() {
        let mut c = Aimd::new(30, 64);
        let mut t = Instant::now();
        c.answered(t, ok(50));
        t += MS * 60;
        let change = c.answered(t, PUSHED_BACK).expect("a decrease");
        assert_eq!((change.from, change.to), (30, 27));
        assert!(change.back_pressure);
        let mut c = Aimd::new(5, 64);
        c.answered(t, ok(50));
        t += MS * 60;
        assert_eq!(c.answered(t, PUSHED_BACK).map(|c| c.to), Some(4));
        let mut c = Aimd::new(1, 64);
        c.answered(t, ok(50));
        t += MS * 60;
        assert_eq!(c.answered(t, PUSHED_BACK), None, "1 stays 1");
    }

    #[test]
    fn round_trips_rising_far_above_their_mean_shrink_the_limit() {
        let mut c = Aimd::new(10, 64);
        let mut t = Instant::now();
        c.answered(t, ok(50));
        for rtt in [48, 52, 49, 51, 50, 50] {
            t += MS * 50;
            c.answered(t, ok(rtt));
        }
        let before = c.limit();
        t += MS * 200;
        let change = c.answered(t, ok(200)).expect("a decrease");
        assert_eq!(change.from, before);
        assert!(change.to < before);
        assert!(!change.back_pressure);
    }

    #[test]
    fn a_rise_of_a_few_percent_over_very_steady_round_trips_is_not_load() {
        let mut c = Aimd::new(10, 64);
        let mut t = Instant::now();
        c.answered(t, ok(50));
        for _ in 0..6 {
            t += MS * 50;
            c.answered(t, ok(50));
        }
        // The deviation is ~0, so 2.5 deviations alone would call 54 ms a rise.
        t += MS * 54;
        assert_eq!(c.answered(t, ok(54)).map(|c| c.to < c.from), None);
        t += MS * 60;
        let change = c
            .answered(t, ok(60))
            .expect("20 % above the mean is a rise");
        assert!(change.to < change.from);
    }

    #[test]
    fn jitter_of_a_few_milliseconds_over_sub_millisecond_round_trips_is_not_load() {
        // A local endpoint answers in ~0.3 ms; on a busy 2-core client the answers it reads
        // are late by the client's own scheduling, up to a few ms. Measured before the floor:
        // the limit fell from 4 to 1-2 (70 decreases in a 1,000-request run) and the run
        // was ~8 % slower than with 4 pinned.
        let us = Duration::from_micros(1);
        let mut c = Aimd::new(4, 64);
        let mut t = Instant::now();
        c.answered(
            t,
            Feedback {
                rtt: Some(us * 300),
                back_pressure: false,
            },
        );
        for i in 0..200u32 {
            let rtt = us
                * if i % 7 == 3 {
                    3_000
                } else {
                    300 + 20 * (i % 5)
                };
            c.started(c.limit());
            t += rtt;
            let change = c.answered(
                t,
                Feedback {
                    rtt: Some(rtt),
                    back_pressure: false,
                },
            );
            assert!(
                change.is_none_or(|c| c.to > c.from),
                "window {i}: {change:?}"
            );
        }
        assert!(c.limit() >= 4, "{}", c.limit());
        // A rise well past the floor is still load.
        t += MS * 20;
        let change = c
            .answered(t, ok(20))
            .expect("20 ms over a ~1 ms mean is a rise");
        assert!(change.to < change.from);
    }

    #[test]
    fn answers_inside_a_window_change_nothing() {
        let mut c = Aimd::new(4, 10);
        let t = Instant::now();
        c.answered(t, ok(50));
        c.started(4);
        assert_eq!(c.answered(t + MS * 10, ok(50)), None);
        assert_eq!(c.answered(t + MS * 20, ok(50)), None);
        assert_eq!(c.limit(), 4);
    }

    #[test]
    fn back_pressure_acts_at_once_and_once_per_round_trip() {
        let mut c = Aimd::new(10, 64);
        let t = Instant::now();
        c.answered(t, ok(50));
        let first = c.answered(t + MS * 10, PUSHED_BACK).map(|c| (c.from, c.to));
        assert_eq!(first, Some((10, 9)), "before the window ends");
        // Answers to requests sent before the decrease: already answered by it.
        assert_eq!(c.answered(t + MS * 20, PUSHED_BACK), None);
        assert_eq!(c.answered(t + MS * 59, PUSHED_BACK), None);
        let later = c.answered(t + MS * 61, PUSHED_BACK).map(|c| (c.from, c.to));
        assert_eq!(later, Some((9, 8)), "a round trip later, again");
    }

    #[test]
    fn against_a_capacity_the_limit_climbs_to_it_and_hovers_below_it() {
        // A simulated endpoint: 50 ms answers, 429 for requests beyond 24 at once.
        let capacity = 24;
        let mut c = Aimd::new(4, 64);
        let mut t = Instant::now();
        c.answered(t, ok(50));
        let (mut sent, mut refused) = (0u64, 0u64);
        let mut highest = 0;
        for _ in 0..400 {
            let n = c.limit();
            highest = highest.max(n);
            c.started(n);
            t += MS * 50;
            for i in 0..n {
                sent += 1;
                let fb = if i < capacity {
                    ok(50)
                } else {
                    refused += 1;
                    PUSHED_BACK
                };
                c.answered(t, fb);
            }
        }
        assert!(highest >= capacity, "climbs to the capacity: {highest}");
        assert!(
            c.limit() >= capacity * 3 / 4,
            "stays near it: {}",
            c.limit()
        );
        let share = refused as f64 / sent as f64;
        assert!(share < 0.05, "few 429s: {refused} of {sent}");
    }
}
