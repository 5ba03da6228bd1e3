//! Log output: human-readable by default, JSON lines with `--log-format json`; always
//! on stderr, so stdout stays clean for data. Colours only when stderr is a terminal and
//! `NO_COLOR` is not set (to anything but empty; <https://no-color.org>).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;

use super::{GlobalArgs, LogFormat};

/// `-q`: only errors, no summary or progress either.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Whether `-q` was given: commands print their summaries, warnings and progress only
/// without it (errors always).
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

pub fn init(args: &GlobalArgs) {
    QUIET.store(args.quiet, Ordering::Relaxed);
    let default = match (args.quiet, args.verbose) {
        (true, _) => "error",
        (false, 0) => "warn,stagepush=info",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter =
        EnvFilter::try_from_env("STAGEPUSH_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .with_target(false);
    match args.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Whether log lines are coloured: on a terminal, unless `NO_COLOR` is set and not empty.
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use super::colour;
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
    }
}
