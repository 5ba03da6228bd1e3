//! A local stand-in for a CluedIn Ingestion Endpoint (`stagepush mock-cluedin`), for tests,
//! demos and benchmarks. It behaves as `docs/reference/cluedin-endpoint.md` documents the real one:
//!
//! - `POST /upload/api/endpoint/{id}` only (404 elsewhere, 405 for other methods);
//! - `Authorization: Bearer <token>` required (401 otherwise);
//! - gzip bodies (`Content-Encoding: gzip`); a JSON **array** of objects, or NDJSON when the
//!   `Content-Type` is `application/x-ndjson` — anything else is 400 `invalid-array-json-sent`
//!   with `rowIndex: -1`;
//! - at most 100,000 rows (`--max-rows`; more is answered 413, the mock's choice: the real
//!   limit's answer is not documented) and 490 columns per row after flattening nested objects
//!   (more is a row error `too-many-columns`);
//! - field names with spaces or dots give a `space-in-property` **warning** (`rowIndex` as a
//!   string); values or names holding unsupported characters (control characters other than
//!   tab/LF/CR, U+FFFE, U+FFFF) give a row **error** `invalid-character` (`rowIndex` as a
//!   number), and then no row of the request is stored (all-or-nothing, like any 400);
//!   a body that is not valid JSON (e.g. a lone surrogate escape) is 400 with `rowIndex: -1`;
//! - `--max-body-bytes` (bytes on the wire) → 413 with an HTML body, like a proxy would;
//! - every JSON answer carries a fresh `receiptId` (UUID v4).
//!
//! Faults for tests: `--sequence 429,503,200,drop,413` answers the first requests in that
//! order (`200`/`ok` = normal processing, `drop` = close the connection without answering,
//! any other status = that status; see [`MockAnswer`] for answers that misbehave like a proxy
//! or a misconfigured URL: `redirect302:LOCATION`, `html200`, `empty200`, `false200`); afterwards `--rate-drop`, `--rate-429` (with
//! `Retry-After: --retry-after`), `--rate-500`, `--rate-503` draw per request from a PRNG
//! seeded by `--seed`. `--slow-ms` delays every answer. `--capacity K` answers 429 at once to
//! an ingestion request arriving while K others are being answered (an endpoint at its
//! capacity; logged `"answer":"over-capacity"`). `--hold-while-exists FILE` holds
//! every answer while `FILE` exists (a gate: a test creates it, lets requests pile up, and
//! removes it; the body is read first and the request logged only when answered). Faults are decided after the token
//! check, so a wrong token is always 401. `--reject-external-id ID` (repeatable) makes every
//! record whose `externalId` is `ID` a row error (`rejected-external-id`, `rowIndex` as a
//! number): the request is answered 400 naming those rows and nothing of it is stored, as
//! for any row error; a client that resends the other rows gets them stored.
//!
//! `GET` (or any method) on `/login` answers 200 with an HTML sign-in page, whatever the
//! token: the page a single-sign-on proxy redirects to (`--sequence redirect302:/login`), so a
//! test can show what a client that follows redirects would take for an acknowledgement.
//! Its requests are logged with `"answer":"login-page"`.
//!
//! With `--store DIR`, every accepted record is appended to `DIR/records.ndjson` as
//! `{"endpointId":…,"receiptId":…,"record":{…}}` and every request to `DIR/requests.ndjson`
//! as `{"seq","t_ms","method","path","endpoint_id","status","answer","rows","request_id",
//! "content_encoding","content_type","body_bytes","receipt_id"}` (`t_ms`: arrival of the
//! request head, milliseconds since the mock started; `status` is null for a dropped
//! connection). Both files are written with one `write` per request, **before** the answer is
//! sent, so a client that has its answer finds its lines complete; a reader running
//! concurrently should ignore a last line without its `\n`. `DIR/arrivals.ndjson` gets a
//! line `{"seq","t_ms","path","request_id","body_bytes"}` as soon as a request's body is
//! read, before `--slow-ms` and `--hold-while-exists`: a test holding answers with the gate
//! knows from it how many requests are waiting (`requests.ndjson` only has them once
//! answered; a request whose client went away while held never gets a line there).

mod ingest;
mod server;
mod store;
mod token;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

pub use ingest::{DEFAULT_MAX_COLUMNS, DEFAULT_MAX_ROWS};
pub use server::MockServer;
pub use token::MockToken;

/// Default listen address (port 0: any free port).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:0";
/// Default `Retry-After` of injected 429 answers, seconds.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 1;
/// Largest decompressed body accepted, bytes (a gzip bomb guard); more is answered 413.
pub const MAX_DECOMPRESSED_BYTES: u64 = 1024 * 1024 * 1024;
/// File of accepted records in the store directory.
pub const RECORDS_FILE: &str = "records.ndjson";
/// File of requests in the store directory.
pub const REQUESTS_FILE: &str = "requests.ndjson";
/// The path of the mock's HTML sign-in page (200 for any method and token).
pub const LOGIN_PATH: &str = "/login";
/// File of request arrivals (body read, before any delay or gate) in the store directory.
pub const ARRIVALS_FILE: &str = "arrivals.ndjson";
/// How often a held answer checks whether its `--hold-while-exists` file is gone.
pub const HOLD_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// Arguments of `stagepush mock-cluedin`.
#[derive(Debug, Clone, clap::Args)]
pub struct MockArgs {
    /// Address to listen on; the bound address is printed as the first line of stdout
    /// (`listening on http://127.0.0.1:PORT`).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// The API token clients must send as `Authorization: Bearer TOKEN`.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "STAGEPUSH_MOCK_TOKEN",
        hide_env_values = true
    )]
    pub token: MockToken,
    /// Directory for `records.ndjson` and `requests.ndjson` (created if missing; appended to).
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Answer 413 to bodies larger than this many bytes on the wire.
    #[arg(long, value_name = "N")]
    pub max_body_bytes: Option<u64>,
    /// Most rows per request (CluedIn: 100,000); more is answered 413.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_ROWS)]
    pub max_rows: usize,
    /// Most columns per row after flattening (CluedIn: 490).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_COLUMNS)]
    pub max_columns: usize,
    /// Fraction of requests answered 429 (with `Retry-After`).
    #[arg(long = "rate-429", value_name = "F", default_value_t = 0.0, value_parser = parse_rate)]
    pub rate_429: f64,
    /// `Retry-After` of 429 answers, seconds.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RETRY_AFTER_SECS)]
    pub retry_after: u64,
    /// Fraction of requests answered 500.
    #[arg(long = "rate-500", value_name = "F", default_value_t = 0.0, value_parser = parse_rate)]
    pub rate_500: f64,
    /// Fraction of requests answered 503.
    #[arg(long = "rate-503", value_name = "F", default_value_t = 0.0, value_parser = parse_rate)]
    pub rate_503: f64,
    /// Fraction of requests whose connection is closed without an answer.
    #[arg(long = "rate-drop", value_name = "F", default_value_t = 0.0, value_parser = parse_rate)]
    pub rate_drop: f64,
    /// Delay before every answer, milliseconds.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub slow_ms: u64,
    /// Answer at most K ingestion requests at once: one arriving while K are being answered
    /// gets 429 (with `Retry-After: --retry-after`) at once, like an endpoint at its capacity.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    pub capacity: Option<u32>,
    /// Hold every answer while this file exists (checked every 10 ms): a gate for tests.
    #[arg(long, value_name = "FILE")]
    pub hold_while_exists: Option<PathBuf>,
    /// Fixed answers for the first requests, e.g. `429,503,200,drop,413`: `ok`/`200` (normal),
    /// `drop` (close without answering), a status (100-599), `redirectNNN:LOCATION` (a 3xx
    /// with that `Location`, e.g. `redirect302:/login` or
    /// `redirect307:http://host/upload/api/endpoint/X`; no commas in LOCATION), `html200` (200
    /// with an HTML page), `empty200` (200 with an empty body), `false200` (200 with
    /// `{"success":false}` and no message). Nothing of a scripted answer's body is stored.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub sequence: Vec<MockAnswer>,
    /// Seed of the fault PRNG.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Answer every authorized request with success without decoding, checking or storing
    /// its body: a cheap local sink for benchmarks (faults still apply).
    #[arg(long)]
    pub accept_all: bool,
    /// Refuse records with this `externalId` (repeatable): a 400 naming their rows by
    /// `rowIndex`, like a CluedIn validation error.
    #[arg(long, value_name = "ID")]
    pub reject_external_id: Vec<String>,
}

impl MockArgs {
    /// Arguments with every default, the given token and store (for in-process use).
    pub fn new(token: impl Into<String>, store: Option<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: MockToken::new(token),
            store,
            max_body_bytes: None,
            max_rows: DEFAULT_MAX_ROWS,
            max_columns: DEFAULT_MAX_COLUMNS,
            rate_429: 0.0,
            retry_after: DEFAULT_RETRY_AFTER_SECS,
            rate_500: 0.0,
            rate_503: 0.0,
            rate_drop: 0.0,
            slow_ms: 0,
            capacity: None,
            hold_while_exists: None,
            sequence: Vec::new(),
            seed: 0,
            accept_all: false,
            reject_external_id: Vec::new(),
        }
    }

    fn validate(&self) -> Result<(), MockError> {
        let rates = [self.rate_429, self.rate_500, self.rate_503, self.rate_drop];
        if rates.iter().any(|r| !(0.0..=1.0).contains(r)) || rates.iter().sum::<f64>() > 1.0 + 1e-9
        {
            return Err(MockError::Args(
                "fault rates must be within 0..=1 and add up to at most 1".into(),
            ));
        }
        if self.max_rows == 0 || self.max_columns == 0 {
            return Err(MockError::Args(
                "--max-rows and --max-columns must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// One scripted answer of `--sequence`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MockAnswer {
    /// `200` or `ok`: process the request normally.
    Normal,
    /// `drop`: close the connection without answering.
    Drop,
    /// Any other status (100–599): answer it (429 with `Retry-After`, 413 with an HTML page,
    /// 400 with a JSON error naming no row).
    Status(u16),
    /// `redirectNNN:LOCATION` (NNN in 300–399): that status with `Location: LOCATION` (as
    /// given: relative or absolute) and a short HTML body, like a proxy or a moved site.
    Redirect {
        /// The 3xx status.
        status: u16,
        /// The `Location` header.
        location: String,
    },
    /// `html200`: 200 with an HTML page (`text/html`), not CluedIn's JSON, like a proxy's
    /// maintenance or sign-in page.
    Html200,
    /// `empty200`: 200 with an empty body, like a proxy that drops the upstream's answer.
    Empty200,
    /// `false200`: 200 with `{"success":false,"error":true,"receiptId":…,"errors":[]}`: a
    /// failure that names no row and gives no message.
    SuccessFalse200,
}

/// The prefix of a scripted redirect (`redirect302:/login`).
const REDIRECT_PREFIX: &str = "redirect";

/// A `--sequence` entry that is not an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MockAnswerError {
    /// `redirectNNN:LOCATION` with NNN outside 300-399 (or not a number).
    #[error("{given:?}: a redirect status is 300-399")]
    RedirectStatus {
        /// The entry as given.
        given: String,
    },
    /// `redirect…` without `NNN:LOCATION`.
    #[error("{given:?} is not a redirect: use redirectNNN:LOCATION, e.g. redirect302:/login")]
    NotARedirect {
        /// The entry as given.
        given: String,
    },
    /// Neither a keyword nor a status 100-599.
    #[error(
        "{given:?} is not an answer: use ok, drop, html200, empty200, false200, \
         redirectNNN:LOCATION or an HTTP status (100-599)"
    )]
    Unknown {
        /// The entry as given.
        given: String,
    },
}

impl FromStr for MockAnswer {
    type Err = MockAnswerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        if let Some(rest) = trimmed
            .get(..REDIRECT_PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(REDIRECT_PREFIX))
            .map(|_| &trimmed[REDIRECT_PREFIX.len()..])
        {
            return match rest.split_once(':') {
                Some((code, location)) if !location.is_empty() => match code.parse::<u16>() {
                    Ok(status) if (300..=399).contains(&status) => Ok(MockAnswer::Redirect {
                        status,
                        location: location.to_string(),
                    }),
                    _ => Err(MockAnswerError::RedirectStatus { given: s.into() }),
                },
                _ => Err(MockAnswerError::NotARedirect { given: s.into() }),
            };
        }
        match trimmed.to_ascii_lowercase().as_str() {
            "ok" | "200" => Ok(MockAnswer::Normal),
            "drop" => Ok(MockAnswer::Drop),
            "html200" => Ok(MockAnswer::Html200),
            "empty200" => Ok(MockAnswer::Empty200),
            "false200" => Ok(MockAnswer::SuccessFalse200),
            other => match other.parse::<u16>() {
                Ok(code) if (100..=599).contains(&code) => Ok(MockAnswer::Status(code)),
                _ => Err(MockAnswerError::Unknown { given: s.into() }),
            },
        }
    }
}

/// A `--rate-*` value that is not a fraction between 0 and 1.
#[derive(Debug, thiserror::Error)]
#[error("{given:?} is not a fraction between 0 and 1")]
pub struct RateError {
    /// The value as given.
    pub given: String,
}

fn parse_rate(s: &str) -> Result<f64, RateError> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(RateError {
            given: s.to_owned(),
        }),
    }
}

/// Errors of the mock server.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// Invalid arguments.
    #[error("invalid mock arguments: {0}")]
    Args(String),
    /// The listen address could not be bound.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The store directory or its files could not be opened.
    #[error("store {path}: {source}")]
    Store {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Accepting connections failed.
    #[error("accepting connections: {0}")]
    Accept(std::io::Error),
    /// The server task ended abnormally.
    #[error("server task: {0}")]
    Task(String),
}

/// Runs the mock until Ctrl-C: prints `listening on http://ADDR` as the first line of stdout,
/// then serves.
pub async fn serve(args: MockArgs) -> Result<(), MockError> {
    let server = MockServer::start(args).await?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        // A closed stdout must not stop the server.
        let _ = writeln!(out, "listening on {}", server.base_url());
        let _ = out.flush();
    }
    tokio::select! {
        result = server.wait() => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: MockArgs,
    }

    #[test]
    fn arguments_parse() {
        let cli = Cli::try_parse_from([
            "mock",
            "--token",
            "t0k",
            "--sequence",
            "429,503,200,drop,413,ok",
            "--rate-429",
            "0.1",
            "--rate-drop",
            "0.05",
            "--max-body-bytes",
            "1000",
            "--seed",
            "9",
            "--reject-external-id",
            "42",
            "--reject-external-id",
            "C-7",
        ])
        .unwrap();
        let a = cli.args;
        assert_eq!(a.listen.to_string(), "127.0.0.1:0");
        assert_eq!(
            a.sequence,
            [
                MockAnswer::Status(429),
                MockAnswer::Status(503),
                MockAnswer::Normal,
                MockAnswer::Drop,
                MockAnswer::Status(413),
                MockAnswer::Normal
            ]
        );
        assert_eq!(a.rate_429, 0.1);
        assert_eq!(a.max_body_bytes, Some(1000));
        assert_eq!(a.retry_after, DEFAULT_RETRY_AFTER_SECS);
        assert_eq!(a.reject_external_id, ["42", "C-7"]);
        assert!(!format!("{a:?}").contains("t0k"), "token redacted in Debug");
        assert!(Cli::try_parse_from(["mock", "--token", "t", "--rate-500", "1.5"]).is_err());
        assert!(Cli::try_parse_from(["mock", "--token", "t", "--sequence", "700"]).is_err());
        assert!(Cli::try_parse_from(["mock", "--token", "t", "--sequence", "later"]).is_err());
    }

    #[test]
    fn misbehaving_answers_parse() {
        let cli = Cli::try_parse_from([
            "mock",
            "--token",
            "t",
            "--sequence",
            "redirect302:/login?next=/x,REDIRECT307:http://127.0.0.1:9/upload/api/endpoint/A,html200,Empty200,false200",
        ])
        .unwrap();
        assert_eq!(
            cli.args.sequence,
            [
                MockAnswer::Redirect {
                    status: 302,
                    location: "/login?next=/x".into()
                },
                MockAnswer::Redirect {
                    status: 307,
                    location: "http://127.0.0.1:9/upload/api/endpoint/A".into()
                },
                MockAnswer::Html200,
                MockAnswer::Empty200,
                MockAnswer::SuccessFalse200,
            ]
        );
        for bad in [
            "redirect200:/x",
            "redirect302:",
            "redirect302",
            "redirectxyz:/x",
        ] {
            assert!(bad.parse::<MockAnswer>().is_err(), "{bad}");
        }
    }

    #[test]
    fn refused_values_say_why() {
        assert_eq!(
            "700".parse::<MockAnswer>().unwrap_err().to_string(),
            "\"700\" is not an answer: use ok, drop, html200, empty200, false200, \
             redirectNNN:LOCATION or an HTTP status (100-599)"
        );
        assert_eq!(
            "redirect200:/x".parse::<MockAnswer>().unwrap_err(),
            MockAnswerError::RedirectStatus {
                given: "redirect200:/x".into()
            }
        );
        assert_eq!(
            "redirect302".parse::<MockAnswer>().unwrap_err().to_string(),
            "\"redirect302\" is not a redirect: use redirectNNN:LOCATION, e.g. redirect302:/login"
        );
        assert_eq!(
            parse_rate("1.5").unwrap_err().to_string(),
            "\"1.5\" is not a fraction between 0 and 1"
        );
        assert_eq!(parse_rate("0.25").unwrap(), 0.25);
    }

    #[test]
    fn rates_must_add_up_to_at_most_one() {
        let mut a = MockArgs::new("t", None);
        a.rate_429 = 0.6;
        a.rate_503 = 0.6;
        assert!(a.validate().is_err());
        a.rate_503 = 0.4;
        assert!(a.validate().is_ok());
    }
}
