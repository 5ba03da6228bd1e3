//! `stagepush init [--output FILE] [--force]`: writes the commented configuration file
//! ([`stagepush::config_template`]) to start from. Refuses to replace a file unless
//! `--force`; `--output -` prints it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::exit::Outcome;

/// The file `init` writes by default.
pub const DEFAULT_CONFIG_FILE: &str = "stagepush.toml";

#[derive(Args)]
pub struct InitArgs {
    /// Where to write it (`-`: stdout).
    #[arg(long, short, value_name = "FILE", default_value = DEFAULT_CONFIG_FILE)]
    pub output: PathBuf,
    /// Replace the file if it exists.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    let text = stagepush::config_template::template();
    if args.output.as_os_str() == "-" {
        std::io::stdout().write_all(text.as_bytes())?;
        return Ok(Outcome::Done.into());
    }
    let path = &args.output;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if args.force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!(
                "error: {} exists: not replaced (--force replaces it)",
                path.display()
            );
            return Ok(Outcome::Failed.into());
        }
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", path.display());
            return Ok(Outcome::Failed.into());
        }
    };
    if let Err(e) = file
        .write_all(text.as_bytes())
        .and_then(|_| file.sync_all())
    {
        eprintln!("error: cannot write {}: {e}", path.display());
        return Ok(Outcome::Failed.into());
    }
    eprintln!(
        "wrote {0}: edit [source] url and [sink] endpoint (the lines marked EDIT), choose \
         the transform ([plugin] path, a [mapping] (docs/mapping.md), or neither for an \
         unload shaped in SQL), then `stagepush check --config {0}`",
        path.display()
    );
    Ok(Outcome::Done.into())
}
