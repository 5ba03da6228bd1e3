//! The one mapping from how a command ended to its exit status (README: `run`'s "Exit
//! status" and the table "What happens when things fail"). Every command returns an
//! [`Outcome`]; nothing in `cli/` writes a number.
//!
//! | status | outcome |
//! |---|---|
//! | 0 | [`Outcome::Done`]: every row delivered or filtered; no dead letter left (`retry`); the command did what it was asked |
//! | 1 | [`Outcome::Failed`]: the run stopped (a fatal error), or the command could not do what it was asked (`plugin test --expect` differences, a damaged state, a stage without data files, `init` would replace a file, a `check` of the endpoint, stage, plugin or state failed) |
//! | 2 | [`Outcome::Usage`]: usage or configuration error (`check`: the configuration, the token or an endpoint URL) |
//! | 3 | [`Outcome::DeadLetters`]: the run finished but some rows were dead-lettered (`retry`: some remain) |
//! | 130 / 143 | [`Outcome::Interrupted`]: stopped by SIGINT / SIGTERM (128 + the signal's number) |

use std::process::ExitCode;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed,
    Usage,
    DeadLetters,
    Interrupted(Signal),
}

/// The signals that stop a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Int,
    Term,
}

impl Signal {
    /// The signal `name` (`SIGTERM`; anything else is SIGINT).
    pub fn named(name: &str) -> Signal {
        match name {
            "SIGTERM" => Signal::Term,
            _ => Signal::Int,
        }
    }
}

impl Outcome {
    /// The process exit status.
    pub const fn code(self) -> u8 {
        match self {
            Outcome::Done => 0,
            Outcome::Failed => 1,
            Outcome::Usage => 2,
            Outcome::DeadLetters => 3,
            // 128 + the signal's number, as shells report a process a signal ended.
            Outcome::Interrupted(Signal::Int) => 128 + 2,
            Outcome::Interrupted(Signal::Term) => 128 + 15,
        }
    }

    /// A run's (or a retry's) end: stopped, finished with rows left in the dead letters,
    /// or done.
    pub fn of_run(stopped: bool, dead_letters: bool) -> Outcome {
        match (stopped, dead_letters) {
            (true, _) => Outcome::Failed,
            (false, true) => Outcome::DeadLetters,
            (false, false) => Outcome::Done,
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> ExitCode {
        ExitCode::from(outcome.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statuses README documents (`run`'s exit status, the failure table).
    #[test]
    fn codes_are_the_documented_ones() {
        assert_eq!(Outcome::Done.code(), 0);
        assert_eq!(Outcome::Failed.code(), 1);
        assert_eq!(Outcome::Usage.code(), 2);
        assert_eq!(Outcome::DeadLetters.code(), 3);
        assert_eq!(Outcome::Interrupted(Signal::named("SIGINT")).code(), 130);
        assert_eq!(Outcome::Interrupted(Signal::named("SIGTERM")).code(), 143);
    }

    #[test]
    fn a_stopped_run_fails_whatever_its_dead_letters() {
        assert_eq!(Outcome::of_run(true, true), Outcome::Failed);
        assert_eq!(Outcome::of_run(true, false), Outcome::Failed);
        assert_eq!(Outcome::of_run(false, true), Outcome::DeadLetters);
        assert_eq!(Outcome::of_run(false, false), Outcome::Done);
    }
}
