//! How an error is shown on one line (`error: …` of the command line): its message, then
//! each cause in its chain that the text does not already say, `a: b: c`. Many messages
//! include their cause (`state folder X: No space left on device (os error 28)`) and also
//! return it as `source()`; printing the chain naively would say the cause twice.

use std::error::Error;

/// `error` and its causes, each said once.
pub fn one_line(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(source) = cause {
        let said = source.to_string();
        if !said.is_empty() && !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = source.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error whose message repeats its source, as many `thiserror` messages do.
    #[derive(Debug, thiserror::Error)]
    #[error("dead-letter output /d: {source}")]
    struct Repeats {
        source: std::io::Error,
    }

    /// An error whose message does not say its source.
    #[derive(Debug, thiserror::Error)]
    #[error("cannot write the report")]
    struct Context {
        source: Repeats,
    }

    #[test]
    fn each_cause_is_said_once() {
        let full = || std::io::Error::from_raw_os_error(libc::ENOSPC);
        let error = Repeats { source: full() };
        let text = one_line(&error);
        assert_eq!(
            text,
            format!("dead-letter output /d: {}", full()),
            "the cause once"
        );
        assert_eq!(text.matches("No space left on device").count(), 1, "{text}");
        // A cause the message does not say is added, once.
        let text = one_line(&Context { source: error });
        assert_eq!(
            text,
            format!("cannot write the report: dead-letter output /d: {}", full())
        );
    }
}
