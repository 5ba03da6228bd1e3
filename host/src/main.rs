//! The `stagepush` command line: the binary's edge, where errors become messages and
//! exit codes (0 done, 1 the run stopped, 2 usage or configuration error, 3 finished with
//! rejected rows).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    stagepush::memory::limit_arenas();
    let args = cli::Cli::parse();
    cli::logging::init(&args.global);
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(error) => {
            // Each cause once (`{error:#}` repeats causes that messages already include).
            eprintln!("error: {}", stagepush::errors::one_line(error.as_ref()));
            cli::exit::Outcome::Failed.into()
        }
    }
}
