//! What an object key says about a stage file.
//!
//! - [`source_file`] turns a key into the contract's [`SourceFile`]: the key itself plus the
//!   `key=value` folders that Snowflake's `PARTITION BY` writes, URL-decoded, in path order.
//!   A partition whose value is SQL NULL is written as `_NULL_` (some tools write
//!   `__NULL__`); both become a partition without a value. When the whole partition
//!   expression is NULL Snowflake writes a bare `_NULL_/` folder: that becomes a partition
//!   with an empty name and no value, so the plugin still sees that the level exists.
//! - [`parse_file_name`] splits a Snowflake unload file name into its parts (see
//!   `docs/reference/snowflake-unload.md`): `data_0_1_0.snappy.parquet`, `<prefix>_0_0_0.snappy.parquet`,
//!   `data_<query-uuid>_<a>_<b>_<c>.snappy.parquet` and the extension-less `data` of
//!   `SINGLE=TRUE`.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use crate::bindings::types::SourceFile;

/// The values Snowflake (and Hive-style writers) use for a NULL partition.
const NULL_PARTITIONS: [&str; 2] = ["_NULL_", "__NULL__"];

/// The contract's description of the file at `key` (an object key or a path).
///
/// Only folders are read for partitions, never the file name; backslashes are not
/// separators. Percent-escapes (`%3D`, `%2F`, `%20`, …) are decoded in both the name and
/// the value; invalid UTF-8 after decoding is replaced with U+FFFD. `+` is left alone: it
/// is a space only in form-encoded S3 event keys, which the event parser decodes first.
pub fn source_file(key: &str) -> SourceFile {
    let folders = match key.rsplit_once('/') {
        Some((folders, _file)) => folders,
        None => "",
    };
    let partitions = folders.split('/').filter_map(partition).collect::<Vec<_>>();
    SourceFile {
        key: key.to_owned(),
        partitions,
    }
}

/// The partition a folder name stands for, if it is one.
fn partition(folder: &str) -> Option<(String, Option<String>)> {
    if NULL_PARTITIONS.contains(&folder) {
        return Some((String::new(), None));
    }
    let (name, value) = folder.split_once('=')?;
    let value = decode(value);
    let value = if NULL_PARTITIONS.contains(&value.as_ref()) {
        None
    } else {
        Some(value.into_owned())
    };
    Some((decode(name).into_owned(), value))
}

fn decode(text: &str) -> Cow<'_, str> {
    percent_decode_str(text).decode_utf8_lossy()
}

/// The parts of a Snowflake unload file name.
///
/// `data_019c059d-0502-d90c-0000-438300ad6596_006_4_0.snappy.parquet` has prefix `data`,
/// query id `019c059d-…`, numbers `["006", "4", "0"]` and extension `snappy.parquet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnloadFileName {
    /// The part before the numbers: `data`, or the file-name part of the unload path
    /// (`@stage/intro/intro_trips` → `intro_trips`). For a name that does not end in three
    /// numbers (the `data` file of `SINGLE=TRUE`, or a name the user chose) this is the
    /// whole name without its extension.
    pub prefix: String,
    /// The query id `INCLUDE_QUERY_ID=TRUE` (or `PARTITION BY`) puts in the name.
    pub query_id: Option<String>,
    /// The three numbers Snowflake appends (`<a>_<b>_<c>`), as written (leading zeros
    /// kept); `None` for a single-file unload.
    pub numbers: Option<[String; 3]>,
    /// Everything after the first dot (`snappy.parquet`); empty when there is no dot.
    pub extension: String,
}

impl UnloadFileName {
    /// The compression the extension names (`snappy` in `snappy.parquet`; a text file's
    /// whole-file compression: `gzip` for `csv.gz`), if any.
    pub fn compression(&self) -> Option<&str> {
        use crate::source::format::{Compression, FileFormat, detect_name};
        if let Some((format, compression)) = detect_name(&format!("x.{}", self.extension))
            && format != FileFormat::Parquet
        {
            return (compression != Compression::None).then_some(compression.as_str());
        }
        let (first, rest) = self.extension.split_once('.')?;
        (!first.is_empty() && !rest.is_empty()).then_some(first)
    }

    /// True for the file of a `SINGLE=TRUE` unload (no numbers in the name).
    pub fn is_single(&self) -> bool {
        self.numbers.is_none()
    }
}

/// Splits the file name at the end of `key` (folders are ignored) into its parts.
///
/// Never fails: a name that does not follow Snowflake's pattern is taken as a single-file
/// name, whole.
pub fn parse_file_name(key: &str) -> UnloadFileName {
    let name = key.rsplit('/').next().unwrap_or(key);
    let (stem, extension) = name.split_once('.').unwrap_or((name, ""));
    let extension = extension.to_owned();

    let mut parts = stem.rsplitn(4, '_');
    let c = parts.next();
    let b = parts.next();
    let a = parts.next();
    let rest = parts.next();
    let (Some(a), Some(b), Some(c), Some(rest)) = (a, b, c, rest) else {
        return single(stem, extension);
    };
    if ![a, b, c].iter().all(|part| is_number(part)) || rest.is_empty() {
        return single(stem, extension);
    }
    let numbers = Some([a.to_owned(), b.to_owned(), c.to_owned()]);
    let (prefix, query_id) = match rest.rsplit_once('_') {
        Some((prefix, id)) if is_query_id(id) && !prefix.is_empty() => {
            (prefix.to_owned(), Some(id.to_owned()))
        }
        _ => (rest.to_owned(), None),
    };
    UnloadFileName {
        prefix,
        query_id,
        numbers,
        extension,
    }
}

fn single(stem: &str, extension: String) -> UnloadFileName {
    UnloadFileName {
        prefix: stem.to_owned(),
        query_id: None,
        numbers: None,
        extension,
    }
}

fn is_number(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())
}

/// A UUID in its 8-4-4-4-12 hexadecimal form, as Snowflake prints query ids.
fn is_query_id(part: &str) -> bool {
    let groups: Vec<&str> = part.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partitions(key: &str) -> Vec<(String, Option<String>)> {
        source_file(key).partitions
    }

    fn some(name: &str, value: &str) -> (String, Option<String>) {
        (name.to_owned(), Some(value.to_owned()))
    }

    #[test]
    fn source_file_keeps_the_key_and_reads_partition_folders_in_order() {
        let key = "unload/customers/date=2024-05-01/country=NL/data_0_0_0.snappy.parquet";
        let file = source_file(key);
        assert_eq!(file.key, key);
        assert_eq!(
            file.partitions,
            vec![some("date", "2024-05-01"), some("country", "NL")]
        );
    }

    #[test]
    fn source_file_without_partitions_has_none() {
        assert!(partitions("data_0_0_0.snappy.parquet").is_empty());
        assert!(partitions("unload/customers/data_0_0_0.snappy.parquet").is_empty());
        assert!(partitions("").is_empty());
    }

    #[test]
    fn the_file_name_is_never_a_partition() {
        assert!(partitions("unload/a=b.parquet").is_empty());
    }

    #[test]
    fn partition_names_and_values_are_url_decoded() {
        assert_eq!(
            partitions("s/k%3Dx=a%3Db%2Fc%20d/e+f=g+h/data"),
            vec![some("k=x", "a=b/c d"), some("e+f", "g+h")]
        );
        // Only the first raw `=` separates name and value.
        assert_eq!(partitions("s/k=v=w/data"), vec![some("k", "v=w")]);
        // An empty value is a value.
        assert_eq!(partitions("s/k=/data"), vec![some("k", "")]);
    }

    #[test]
    fn invalid_utf8_after_decoding_is_replaced_not_an_error() {
        assert_eq!(partitions("s/k=%FF/data"), vec![some("k", "\u{FFFD}")]);
    }

    #[test]
    fn null_partitions_have_no_value() {
        assert_eq!(
            partitions("s/a=_NULL_/b=__NULL__/c=%5FNULL%5F/data"),
            vec![
                ("a".to_owned(), None),
                ("b".to_owned(), None),
                ("c".to_owned(), None)
            ]
        );
        // A bare `_NULL_` folder: the whole partition expression was NULL.
        assert_eq!(
            partitions("s/_NULL_/data_0_0_0.snappy.parquet"),
            vec![(String::new(), None)]
        );
        assert_eq!(partitions("s/__NULL__/data"), vec![(String::new(), None)]);
        // `_NULL_x` is an ordinary value.
        assert_eq!(partitions("s/a=_NULL_x/data"), vec![some("a", "_NULL_x")]);
    }

    #[test]
    fn parses_the_default_name() {
        let name = parse_file_name("unload/data_0_1_0.snappy.parquet");
        assert_eq!(
            name,
            UnloadFileName {
                prefix: "data".into(),
                query_id: None,
                numbers: Some(["0".into(), "1".into(), "0".into()]),
                extension: "snappy.parquet".into(),
            }
        );
        assert_eq!(name.compression(), Some("snappy"));
        assert!(!name.is_single());
    }

    #[test]
    fn parses_a_path_prefix_name() {
        let name = parse_file_name("intro/intro_trips_0_0_0.snappy.parquet");
        assert_eq!(name.prefix, "intro_trips");
        assert_eq!(name.query_id, None);
        assert_eq!(name.numbers, Some(["0".into(), "0".into(), "0".into()]));
    }

    #[test]
    fn parses_a_query_id_name() {
        let name = parse_file_name(
            "date=2024-05-01/data_019c059d-0502-d90c-0000-438300ad6596_006_4_0.snappy.parquet",
        );
        assert_eq!(name.prefix, "data");
        assert_eq!(
            name.query_id.as_deref(),
            Some("019c059d-0502-d90c-0000-438300ad6596")
        );
        assert_eq!(name.numbers, Some(["006".into(), "4".into(), "0".into()]));
        assert_eq!(name.extension, "snappy.parquet");

        let custom = parse_file_name("trips_01234567-0123-1234-0000-000000001234_01_0_0.parquet");
        assert_eq!(custom.prefix, "trips");
        assert!(custom.query_id.is_some());
        assert_eq!(custom.compression(), None);
    }

    #[test]
    fn parses_the_single_file_name() {
        let name = parse_file_name("unload/customers/data");
        assert_eq!(
            name,
            UnloadFileName {
                prefix: "data".into(),
                query_id: None,
                numbers: None,
                extension: String::new(),
            }
        );
        assert!(name.is_single());
        assert_eq!(name.compression(), None);
        let csv = parse_file_name("unload/data_0_0_0.csv.gz");
        assert_eq!(csv.prefix, "data");
        assert_eq!(csv.numbers, Some(["0".into(), "0".into(), "0".into()]));
        assert_eq!(csv.extension, "csv.gz");
        assert_eq!(csv.compression(), Some("gzip"));
        assert_eq!(parse_file_name("data_0_1_0.json").compression(), None);
        assert_eq!(
            parse_file_name("data_0_1_0.json.zst").compression(),
            Some("zstd")
        );
        let named = parse_file_name("result.parquet");
        assert_eq!(named.prefix, "result");
        assert!(named.is_single());
    }

    #[test]
    fn names_that_only_look_numbered_are_single() {
        // Not three numbers, or nothing before them.
        assert!(parse_file_name("data_0_x_0.snappy.parquet").is_single());
        assert!(parse_file_name("0_0_0.parquet").is_single());
        assert!(parse_file_name("data_0_0.parquet").is_single());
        // An underscore-separated prefix without a UUID is all prefix.
        let name = parse_file_name("my_export_2024_1_0_0.parquet");
        assert_eq!(name.prefix, "my_export_2024");
        assert_eq!(name.query_id, None);
    }
}
