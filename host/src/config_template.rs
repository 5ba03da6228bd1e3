//! The commented `stagepush.toml` that `stagepush init` writes: every key of the run
//! configuration ([`crate::config::RunConfig`]) with its default, grouped as README's
//! config block. The values are read from the code's defaults (`RunConfig::default()`,
//! `SinkConfig::new`), never copied; keys without a default are commented-out examples,
//! except the two every run needs (`[source] url`, `[sink] endpoint`), which get
//! placeholders marked `EDIT`. The transform is left to choose: a commented-out
//! `[plugin] path`, a commented-out `[mapping]`, or neither (the pass-through). The tests parse the text back with the real parser
//! and check it against README, so neither can drift.

use std::fmt::Write;

use crate::config::{DEFAULT_DEAD_LETTER_DIR, DEFAULT_TOKEN_ENV, RunConfig};
use crate::sink::SinkConfig;

/// The placeholder of `[source] url`.
pub const PLACEHOLDER_SOURCE: &str = "./stage";
/// The placeholder of `[plugin] path`.
pub const PLACEHOLDER_PLUGIN: &str = "plugin.wasm";
/// The placeholder of `[sink] endpoint`.
pub const PLACEHOLDER_ENDPOINT: &str =
    "https://app.example.com/upload/api/endpoint/YOUR-ENDPOINT-ID";

/// Instead of a plugin: a `[mapping]` (commented out; the customer example of
/// `docs/mapping.md`). With neither, the pass-through.
const MAPPING_EXAMPLE: &str = "
# Instead of a plugin, a declarative mapping (docs/mapping.md). With neither a plugin nor a
# [mapping], a stage whose unload shaped the records (EXTERNALID, TYPE, TIMESTAMP,
# PROPERTIES, optional DELETED) is sent as it is.
# [mapping]
# type = \"Customer\"
# id = \"CUSTOMER_ID\"
# timestamp = \"UPDATED_AT\"
# deleted = \"IS_DELETED\"
# [mapping.properties]
# name = \"NAME\"
# email = \"lower(trim(EMAIL))\"
";

/// A TOML string literal.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// A value's TOML, through its serde form (enums as their config names).
fn serialized<T: serde::Serialize>(value: &T) -> String {
    toml::Value::try_from(value)
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// A unit enum's config name from its `Debug` name (`Nested` → `"nested"`, `OnBadFile::Skip`
/// → `"skip"`): for the enums that only deserialize. The tests parse it back.
fn kebab<T: std::fmt::Debug>(value: &T) -> String {
    let name = format!("{value:?}");
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    quoted(&out)
}

/// Where the comments of key lines start.
const COMMENT_COLUMN: usize = 40;

/// `key = value` padded to a comment column.
fn line(out: &mut String, key: &str, value: &str, comment: &str) {
    keyed(out, "", key, value, comment);
}

/// A commented-out `# key = example` (a key without a default, or an alternative).
fn example(out: &mut String, key: &str, value: &str, comment: &str) {
    keyed(out, "# ", key, value, comment);
}

fn keyed(out: &mut String, prefix: &str, key: &str, value: &str, comment: &str) {
    let text = format!("{prefix}{key} = {value}");
    if comment.is_empty() {
        let _ = writeln!(out, "{text}");
    } else {
        let _ = writeln!(out, "{text:<COMMENT_COLUMN$} # {comment}");
    }
}

/// `[source] format`, `[source.csv]` and `[source.json]` (commented out: the defaults read
/// Snowflake's default unloads). The `columns` example declares the customer stage's
/// columns (`stagepush sample-stage --format csv` prints the same).
fn text_formats(out: &mut String, source: &crate::storage::StageConfig) {
    use crate::source::text::options::DEFAULT_INFER_ROWS;
    example(
        out,
        "format",
        &kebab(&source.format),
        "auto (each file's name), parquet, csv or json",
    );
    out.push_str(
        "# CSV files (`TYPE = CSV` unloads), by Snowflake's option names; these are its\n\
         # unload defaults. Without `columns`, every column is text.\n\
         # [source.csv]\n",
    );
    let csv = &source.csv;
    example(out, "field_delimiter", &quoted(&csv.field_delimiter), "");
    // A basic string with its escape: `quoted` would write a multi-line literal.
    example(
        out,
        "record_delimiter",
        &format!("{:?}", csv.record_delimiter),
        "",
    );
    example(
        out,
        "field_optionally_enclosed_by",
        &quoted(&csv.field_optionally_enclosed_by),
        "NONE, \"\\\"\" or \"'\"",
    );
    example(
        out,
        "escape_unenclosed_field",
        &quoted(&csv.escape_unenclosed_field),
        "",
    );
    example(out, "escape", &quoted(&csv.escape), "");
    example(out, "null_if", &serialized(&csv.null_if), "");
    example(
        out,
        "empty_field_as_null",
        &csv.empty_field_as_null.to_string(),
        "",
    );
    example(
        out,
        "header",
        &csv.header.to_string(),
        "the unload's HEADER; false: _COL_0, _COL_1, …",
    );
    example(
        out,
        "columns",
        &serialized(&crate::sample_text::CUSTOMER_CSV_COLUMNS),
        "Snowflake types, in file order",
    );
    out.push_str(
        "# JSON files (`TYPE = JSON` unloads, one object per line). Without `columns`, the\n\
         # columns are inferred from the stage's first file.\n\
         # [source.json]\n",
    );
    example(out, "infer_rows", &DEFAULT_INFER_ROWS.to_string(), "");
}

/// The commented configuration file.
pub fn template() -> String {
    let defaults = RunConfig::default();
    let sink = SinkConfig::new(PLACEHOLDER_ENDPOINT);
    let (plugin, state) = (&defaults.plugin, &defaults.state);
    let mut out = String::new();
    out.push_str(&format!(
        "# stagepush.toml, written by `stagepush init` (stagepush {}).\n\
         # Every key with its default. Flags of `stagepush run` override the file\n\
         # (`stagepush run --config stagepush.toml`); unknown keys are errors.\n\
         # Edit the two lines marked EDIT, choose the transform ([plugin] path, a [mapping],\n\
         # or neither for an unload shaped in SQL), then: stagepush check --config stagepush.toml\n",
        env!("CARGO_PKG_VERSION")
    ));

    out.push_str("\n[source]\n");
    line(
        &mut out,
        "url",
        &quoted(PLACEHOLDER_SOURCE),
        "EDIT: a folder, file://, s3://, az://, azure://, abfss:// or gs:// URL",
    );
    out.push_str(
        "# Object-store settings (region, endpoint, allow_http, path_style, account,\n\
         # use_emulator, skip_signature, …; credentials best from the environment):\n\
         # README \"Stages in object storage\".\n",
    );
    example(&mut out, "region", &quoted("eu-west-1"), "S3");
    text_formats(&mut out, &defaults.source);

    out.push_str("\n[plugin]\n");
    example(
        &mut out,
        "path",
        &quoted(PLACEHOLDER_PLUGIN),
        "a transform plugin (.wasm component), or [mapping] below",
    );
    example(&mut out, "sha256", &quoted("…"), "refuse any other plugin");
    line(
        &mut out,
        "memory_mib",
        &plugin.memory_mib.to_string(),
        "per plugin instance",
    );
    line(
        &mut out,
        "timeout_ms",
        &plugin.timeout_ms.to_string(),
        "per plugin call (batch)",
    );
    line(
        &mut out,
        "batch_rows",
        &plugin.batch_rows.to_string(),
        "rows per plugin call",
    );
    line(
        &mut out,
        "batch_bytes",
        &plugin.batch_bytes.to_string(),
        "input bytes per plugin call and read batch (a larger row goes alone)",
    );
    out.push_str(
        "\n[plugin.config]\n# The plugin's own keys (`stagepush plugin info PLUGIN`), e.g.\n",
    );
    example(&mut out, "region", &quoted("EU"), "");

    out.push_str(MAPPING_EXAMPLE);

    out.push_str("\n[auth]\n");
    line(
        &mut out,
        "token_env",
        &quoted(DEFAULT_TOKEN_ENV),
        "the variable holding the API token (never put the token here)",
    );
    example(
        &mut out,
        "token_file",
        &quoted("/run/secrets/cluedin"),
        "instead of token_env",
    );

    out.push_str("\n[records]\n");
    line(
        &mut out,
        "shape",
        &kebab(&defaults.records.shape),
        "or \"flat\"",
    );

    out.push_str("\n[sink]\n");
    line(
        &mut out,
        "endpoint",
        &quoted(PLACEHOLDER_ENDPOINT),
        "EDIT: {base}/upload/api/endpoint/{id}",
    );
    example(
        &mut out,
        "routes",
        "{ Contact = \"https://app.example.com/upload/api/endpoint/0A1B…\" }",
        "per entity type",
    );
    line(
        &mut out,
        "body",
        &serialized(&sink.body),
        "or \"ndjson\" (real endpoints want json-array)",
    );
    line(
        &mut out,
        "compression",
        &serialized(&sink.compression),
        "or \"none\"",
    );
    line(
        &mut out,
        "gzip_level",
        &sink.gzip_level.to_string(),
        "0-12, libdeflate's scale",
    );
    example(
        &mut out,
        "concurrency",
        "8",
        "pins the requests in flight (default: adaptive)",
    );
    line(
        &mut out,
        "max_concurrency",
        &sink.max_concurrency.to_string(),
        "ceiling of the adaptive concurrency",
    );
    line(
        &mut out,
        "timeout_secs",
        &sink.timeout_secs.to_string(),
        "per request",
    );
    line(
        &mut out,
        "connect_timeout_secs",
        &sink.connect_timeout_secs.to_string(),
        "",
    );
    out.push_str("\n[sink.batch]\n");
    line(
        &mut out,
        "max_rows",
        &sink.batch.max_rows.to_string(),
        "records per request (at most 100,000)",
    );
    line(
        &mut out,
        "max_bytes",
        &sink.batch.max_bytes.to_string(),
        "uncompressed bytes per request",
    );
    out.push_str("\n[sink.retry]\n");
    let retry = &sink.retry;
    line(
        &mut out,
        "max_attempts",
        &retry.max_attempts.to_string(),
        "",
    );
    line(
        &mut out,
        "initial_backoff_ms",
        &retry.initial_backoff_ms.to_string(),
        "",
    );
    line(
        &mut out,
        "max_backoff_secs",
        &retry.max_backoff_secs.to_string(),
        "",
    );
    line(
        &mut out,
        "max_elapsed_secs",
        &retry.max_elapsed_secs.to_string(),
        "",
    );
    line(
        &mut out,
        "max_retry_after_secs",
        &retry.max_retry_after_secs.to_string(),
        "",
    );

    out.push_str("\n[output]\n");
    line(
        &mut out,
        "dead_letter",
        &quoted(DEFAULT_DEAD_LETTER_DIR),
        "rows not delivered, with their reason",
    );
    example(
        &mut out,
        "report",
        &quoted("stagepush-report.json"),
        "the JSON run report",
    );

    out.push_str("\n[run]\n");
    example(
        &mut out,
        "workers",
        "2",
        "transform threads; default: the cores",
    );
    line(
        &mut out,
        "on_bad_file",
        &kebab(&defaults.run.on_bad_file),
        "or \"fail\"",
    );

    out.push_str("\n[state]\n");
    line(
        &mut out,
        "location",
        &quoted(&state.location()),
        "a local folder or s3://, az://, gs:// URL",
    );
    line(
        &mut out,
        "lease_secs",
        &state.lease_secs.to_string(),
        "a claim on a file lapses this long after its worker's last write",
    );
    line(
        &mut out,
        "segment_rows",
        &state.segment_rows.to_string(),
        "rows per segment, the unit of acknowledgement",
    );
    line(
        &mut out,
        "only_changed",
        &state.only_changed.to_string(),
        "--only-changed",
    );
    line(
        &mut out,
        "retry_rejected",
        &state.retry_rejected.to_string(),
        "--retry-rejected",
    );
    out.push_str(
        "# [state.store] holds the state's object-store settings (default: [source]'s).\n",
    );

    let trigger = &defaults.trigger;
    out.push_str(
        "\n# A queue of storage notifications for `run --queue` / `serve --queue`\n\
         # (docs/queues.md): a message is deleted once the objects it names are delivered.\n\
         # [trigger]\n",
    );
    example(
        &mut out,
        "queue",
        "\"https://sqs.eu-west-1.amazonaws.com/123456789012/stage-events\"",
        "--queue",
    );
    example(
        &mut out,
        "queue_kind",
        "\"sqs\"",
        "or \"azure\": for a custom endpoint's URL",
    );
    example(
        &mut out,
        "max_messages",
        &trigger.max_messages.to_string(),
        "per receive: SQS 1-10, Azure 1-32",
    );
    example(
        &mut out,
        "visibility_secs",
        &trigger.visibility_secs.to_string(),
        "hidden this long, extended while delivering",
    );
    example(
        &mut out,
        "wait_secs",
        &trigger.wait_secs.to_string(),
        "one receive's wait (SQS at most 20)",
    );
    out
}

#[cfg(test)]
mod tests;
