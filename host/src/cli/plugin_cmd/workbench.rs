//! `plugin test`: the plugin over Parquet files, stage URLs or JSON rows, each record
//! printed as one line of wire JSON, row errors and a summary on stderr.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use stagepush::pipeline::transformer::{TransformSpec, Transformer};
use stagepush::transform::ArrowInput;

use super::expect::{compare_records, read_expected};
use super::inputs::{TestInput, collect_test_inputs};
use super::{TestArgs, load_plugin};
use crate::cli::exit::Outcome;

pub(super) fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let settings = args.plugin_options.flags.section();
    if let Err(e) = settings.check_limits() {
        eprintln!("error: {e}");
        return Ok(Outcome::Usage.into());
    }
    // Read the expectation first: a missing file should not cost a plugin run.
    let expected = args.expect.as_deref().map(read_expected).transpose()?;
    let files = match &args.json_input {
        Some(path) => {
            anyhow::ensure!(
                args.select.is_empty(),
                "--include, --exclude, --modified-since and --keys-from select files of stage \
                 URLs, not rows of --json-input"
            );
            vec![TestInput::Json(path.clone())]
        }
        None => collect_test_inputs(&args)?,
    };
    anyhow::ensure!(
        !files.is_empty(),
        "no data files found in {:?}",
        args.inputs
    );
    let (_engine, plugin) = load_plugin(&args.plugin, &args.plugin_options)?;

    let started = Instant::now();
    // One plugin instance for every input (the same transform step `run` uses).
    let mut transformer: Option<Transformer> = None;
    let (mut rows, mut records, mut filtered, mut errors) = (0u64, 0u64, 0u64, 0u64);
    // The records as printed, kept only to compare with `--expect`.
    let mut produced: Vec<String> = Vec::new();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let stderr = std::io::stderr();
    'files: for input in &files {
        let (name, source, file) = input.open()?;
        let schema = source.contract_schema()?;
        let transformer = match &mut transformer {
            Some(transformer) => {
                anyhow::ensure!(
                    transformer.schema() == schema.as_slice(),
                    "{name}: its schema differs from the first file's ({})",
                    files[0].name()
                );
                transformer
            }
            None => transformer.insert(Transformer::start(
                &TransformSpec::Plugin {
                    plugin: plugin.clone(),
                    config: args.plugin_options.flags.plugin_config.clone(),
                },
                schema,
                args.shape.into(),
            )?),
        };
        let (projection, batch_schema) = transformer.read_plan();
        for batch in source.batches(settings.batch_rows, projection)? {
            let batch = batch?;
            let mut record_batch = batch.batch;
            if let Some(limit) = args.limit {
                let left = limit.saturating_sub(rows);
                if left == 0 {
                    break 'files;
                }
                if (record_batch.num_rows() as u64) > left {
                    record_batch = record_batch.slice(0, left as usize);
                }
            }
            // Plugin calls are cut by bytes as well as rows, as `run` cuts them.
            let sizes = stagepush::batchbytes::row_bytes(&record_batch);
            let mut offset = 0;
            while offset < record_batch.num_rows() {
                let len = stagepush::batchbytes::rows_within(
                    &sizes,
                    offset,
                    record_batch.num_rows() - offset,
                    settings.batch_bytes as u64,
                );
                let piece = record_batch.slice(offset, len);
                let input = ArrowInput {
                    file: &file,
                    first_row: batch.first_row + offset as u64,
                    batch: &piece,
                    schema: &batch_schema,
                    projection: None,
                };
                offset += len;
                let encoded = transformer.transform(&input)?;
                rows += encoded.rows;
                filtered += encoded.filtered;
                records += encoded.records.len() as u64;
                errors += encoded.failures.len() as u64;
                for record in &encoded.records {
                    let json = encoded.record_json(record);
                    out.write_all(json)?;
                    out.write_all(b"\n")?;
                    if expected.is_some() {
                        produced.push(String::from_utf8_lossy(json).into_owned());
                    }
                }
                out.flush()?;
                let mut err = stderr.lock();
                for failure in &encoded.failures {
                    writeln!(
                        err,
                        "error: {name} row {}: plugin `{}` {} ({}): {}",
                        failure.row,
                        plugin.name(),
                        stage_verb(failure.kind),
                        failure.kind,
                        failure.message
                    )?;
                }
            }
        }
    }
    out.flush()?;
    let elapsed = started.elapsed();
    let plugin_time = transformer
        .as_ref()
        .map(|t| t.stats().time_in_plugin)
        .unwrap_or_default();
    let per_row = |d: std::time::Duration| {
        if rows > 0 {
            d.as_secs_f64() * 1e6 / rows as f64
        } else {
            0.0
        }
    };
    eprintln!(
        "summary: {rows} rows read, {records} records, {filtered} filtered, {errors} errors; \
         {rows} rows in {:.1} ms, {:.2} µs/row ({:.2} µs/row in the plugin; {} files)",
        elapsed.as_secs_f64() * 1e3,
        per_row(elapsed),
        per_row(plugin_time),
        files.len()
    );
    match (&args.expect, expected) {
        (Some(path), Some(expected)) => {
            let report = compare_records(&expected, &produced, &path.display().to_string());
            eprint!("{}", report.text);
            // Records that differ from the expected ones: the test failed.
            Ok(if report.matched {
                Outcome::Done
            } else {
                Outcome::Failed
            }
            .into())
        }
        _ => Ok(Outcome::Done.into()),
    }
}

fn stage_verb(kind: &str) -> &'static str {
    match kind {
        "rejected" => "rejected the row",
        "encode" => "produced an entity that cannot be sent",
        _ => "failed on the row",
    }
}
