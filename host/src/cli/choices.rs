//! The command line's spelling of the core's choices (`--shape`, `--on-bad-file`,
//! `--body`): clap's value enums live here, and each converts into the core's type, so
//! the core carries no command-line derive.

use stagepush::pipeline::OnBadFile;
use stagepush::sink::BodyFormat;
use stagepush::wire::Shape;

/// `--shape`: how entity fields are laid out in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShapeArg {
    /// `{"externalId","type","timestamp","properties":{…},"deleted"}`.
    Nested,
    /// Properties at the top level beside `externalId`, `type` and `timestamp`.
    Flat,
}

impl From<ShapeArg> for Shape {
    fn from(s: ShapeArg) -> Self {
        match s {
            ShapeArg::Nested => Shape::Nested,
            ShapeArg::Flat => Shape::Flat,
        }
    }
}

/// `--on-bad-file`: what to do with a file that cannot be used (vanished, truncated,
/// corrupt, another schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnBadFileArg {
    /// Dead-letter its rows as unread and go on with the other files.
    Skip,
    /// Stop the run.
    Fail,
}

impl From<OnBadFileArg> for OnBadFile {
    fn from(o: OnBadFileArg) -> Self {
        match o {
            OnBadFileArg::Skip => OnBadFile::Skip,
            OnBadFileArg::Fail => OnBadFile::Fail,
        }
    }
}

/// `--body`: request body framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BodyArg {
    /// `[record,record,…]` (`application/json`).
    JsonArray,
    /// One record per line (`application/x-ndjson`).
    Ndjson,
}

impl From<BodyArg> for BodyFormat {
    fn from(b: BodyArg) -> Self {
        match b {
            BodyArg::JsonArray => BodyFormat::JsonArray,
            BodyArg::Ndjson => BodyFormat::Ndjson,
        }
    }
}
