//! The template against the real parser, the code's defaults and README's config blocks.

use std::collections::BTreeSet;

use super::*;

/// The template with every commented-out `# key = value` line and `# [table]` header made
/// live.
fn uncommented(text: &str) -> String {
    text.lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if is_key_line(rest) => rest.to_string(),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_key_line(text: &str) -> bool {
    let header = |t: &str| {
        t.strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .is_some_and(|name| name.chars().all(|c| c.is_ascii_lowercase() || c == '.'))
    };
    header(text)
        || text.split_once(" = ").is_some_and(|(key, _)| {
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// Dotted key paths of a TOML document (tables flattened; maps of the user's own keys,
/// `routes` and `plugin.config`, stop at their name).
fn keys(value: &toml::Value, prefix: &str, out: &mut BTreeSet<String>) {
    let Some(table) = value.as_table() else {
        return;
    };
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let user_map = path == "sink.routes" || path == "plugin.config";
        if value.is_table() && !user_map {
            keys(value, &path, out);
        } else {
            out.insert(path);
        }
    }
}

/// The first ```toml block after `heading` in README.
fn readme_block(heading: &str) -> String {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));
    let from = readme.find(heading).expect("the README heading");
    let rest = &readme[from..];
    let start = rest.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = rest[start..].find("```").expect("the block's end");
    rest[start..start + end].to_string()
}

/// The columns of `stagepush sample-stage`'s customer files.
fn customer_schema() -> Vec<crate::bindings::types::ColumnSchema> {
    use crate::bindings::types::{ColumnSchema, ColumnType, ScalarType, TimeUnit, TimestampType};
    let col = |name: &str, t: ScalarType| ColumnSchema {
        name: name.into(),
        type_: ColumnType::Scalar(t),
        nullable: true,
    };
    vec![
        col("CUSTOMER_ID", ScalarType::Decimal((38, 0))),
        col("NAME", ScalarType::Text),
        col("EMAIL", ScalarType::Text),
        col("COUNTRY", ScalarType::Text),
        col("IS_ACTIVE", ScalarType::Boolean),
        col(
            "UPDATED_AT",
            ScalarType::Timestamp(TimestampType {
                unit: TimeUnit::Millis,
                wall_clock: true,
            }),
        ),
        col("IS_DELETED", ScalarType::Boolean),
    ]
}

#[test]
fn the_template_parses_to_the_defaults_with_its_placeholders() {
    let parsed = RunConfig::parse(&template()).expect("the template parses");
    let mut expected = RunConfig::default();
    expected.source.url = Some(PLACEHOLDER_SOURCE.into());
    expected.sink = Some(SinkConfig::new(PLACEHOLDER_ENDPOINT));
    expected.auth.token_env = Some(DEFAULT_TOKEN_ENV.into());
    expected.output.dead_letter = Some(DEFAULT_DEAD_LETTER_DIR.into());
    expected.state.location = Some(crate::state::DEFAULT_STATE_DIR.into());
    assert_eq!(format!("{parsed:?}"), format!("{expected:?}"));
    // And it is a valid run configuration once the token is there.
    parsed.validate().expect("the template validates");
}

#[test]
fn every_commented_example_is_a_real_key() {
    let text = uncommented(&template());
    assert!(text.contains("\nsha256 = ") && text.contains("\nworkers = "));
    let parsed = RunConfig::parse(&text).expect("the commented examples parse");
    // The mapping example fits the customer stage `stagepush sample-stage` writes.
    let mapping = parsed.mapping.expect("the [mapping] example");
    crate::mapping::validate(&mapping, &customer_schema())
        .expect("the mapping example fits the customer columns");
}

#[test]
fn every_key_readme_documents_is_in_the_template() {
    let template: toml::Value = toml::from_str(&uncommented(&template())).unwrap();
    let mut in_template = BTreeSet::new();
    keys(&template, "", &mut in_template);
    for heading in [
        "### `stagepush run`",
        "### Delivery state: reruns, resume, many workers",
    ] {
        let block: toml::Value = toml::from_str(&readme_block(heading)).unwrap();
        let mut documented = BTreeSet::new();
        keys(&block, "", &mut documented);
        assert!(documented.len() > 4, "{heading}: {documented:?}");
        let missing: Vec<_> = documented.difference(&in_template).collect();
        assert!(
            missing.is_empty(),
            "{heading}: not in the template: {missing:?}"
        );
    }
}

#[test]
fn enum_names_are_their_config_names() {
    assert_eq!(kebab(&crate::wire::Shape::Nested), "\"nested\"");
    assert_eq!(kebab(&crate::pipeline::OnBadFile::Skip), "\"skip\"");
    assert_eq!(
        serialized(&crate::sink::BodyFormat::JsonArray),
        "\"json-array\""
    );
}
