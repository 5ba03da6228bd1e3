use std::io::{BufReader, Cursor, Read};

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, Float64Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

use super::*;

/// Every cell of a batch as text (`None` for NULL).
fn cells(batch: &RecordBatch) -> Vec<Vec<Option<String>>> {
    (0..batch.num_rows())
        .map(|row| {
            batch
                .columns()
                .iter()
                .map(|column| {
                    if column.is_null(row) {
                        return None;
                    }
                    Some(match column.data_type() {
                        DataType::Utf8 => column.as_string::<i32>().value(row).to_owned(),
                        DataType::Decimal128(_, _) => {
                            column.as_primitive::<Decimal128Type>().value_as_string(row)
                        }
                        DataType::Float64 => {
                            column.as_primitive::<Float64Type>().value(row).to_string()
                        }
                        DataType::Boolean => column.as_boolean().value(row).to_string(),
                        DataType::Date32 => {
                            column.as_primitive::<Date32Type>().value(row).to_string()
                        }
                        DataType::Timestamp(_, _) => column
                            .as_primitive::<TimestampMillisecondType>()
                            .value(row)
                            .to_string(),
                        other => panic!("unexpected column type {other}"),
                    })
                })
                .collect()
        })
        .collect()
}

/// A reader that hands out `chunk` bytes at a time (records cross every buffer edge).
struct Trickle {
    data: Vec<u8>,
    at: usize,
    chunk: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.chunk.min(buf.len()).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn options(configure: impl FnOnce(&mut CsvOptions)) -> CsvOptions {
    let mut options = CsvOptions::default();
    configure(&mut options);
    options
}

/// What reading `input` yields: per item, the batch's first row and cells, or the error.
type Item = Result<(u64, Vec<Vec<Option<String>>>), String>;

fn read_with(input: &[u8], options: &CsvOptions, read: &ReadOptions, chunk: usize) -> Vec<Item> {
    let schema = csv_schema(&mut Cursor::new(input), "f.csv", options).unwrap();
    let reader: Box<dyn BufRead + Send> = Box::new(BufReader::new(Trickle {
        data: input.to_vec(),
        at: 0,
        chunk,
    }));
    CsvBatches::new(
        reader,
        "f.csv".into(),
        Arc::new(options.clone()),
        schema,
        read,
        1 << 20,
    )
    .map(|item| {
        item.map(|batch| {
            assert_eq!(batch.row_group, 0);
            (batch.first_row, cells(&batch.batch))
        })
        .map_err(|error| error.to_string())
    })
    .collect()
}

/// Reads `input` whole and a few bytes at a time, checks both agree, returns the items.
fn read(input: &[u8], options: &CsvOptions, read: &ReadOptions) -> Vec<Item> {
    let whole = read_with(input, options, read, usize::MAX);
    for chunk in [1, 2, 3, 7] {
        assert_eq!(
            read_with(input, options, read, chunk),
            whole,
            "read {chunk} bytes at a time"
        );
    }
    whole
}

fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}

/// A default Snowflake CSV unload (`FIELD_OPTIONALLY_ENCLOSED_BY = NONE`,
/// `ESCAPE_UNENCLOSED_FIELD = '\\'`, `NULL_IF = ('\\N')`): delimiters, newlines and
/// backslashes in values are escaped, NULL is `\N`; the last record has no newline.
const DEFAULT_UNLOAD: &str = "1,Ada Lovelace,\\N,2024-02-29 12:00:00.123,TRUE\n\
2,\"Bob\\, Jr\",C:\\\\temp,1969-12-31 23:59:59.999,false\n\
3,two\\\nlines,tab\\there,2024-01-01 00:00:00,\\N\r\n\
4,,x,2024-01-01 00:00:00.000000000,1";

#[test]
fn a_default_snowflake_unload_is_read_with_its_escapes_and_nulls() {
    let options = options(|o| {
        o.columns = vec![
            "ID NUMBER(38,0)".into(),
            "NAME VARCHAR".into(),
            "NOTE TEXT".into(),
            "AT TIMESTAMP_NTZ(3)".into(),
            "ACTIVE BOOLEAN".into(),
        ];
    });
    let items = read(DEFAULT_UNLOAD.as_bytes(), &options, &ReadOptions::default());
    let noon = (19_782_i64 * 86_400_000 + 12 * 3_600_000 + 123).to_string();
    let midnight = (19_723_i64 * 86_400_000).to_string();
    assert_eq!(
        items,
        [Ok((
            0,
            vec![
                vec![s("1"), s("Ada Lovelace"), None, s(&noon), s("true")],
                vec![s("2"), s("\"Bob, Jr\""), s("C:\\temp"), s("-1"), s("false")],
                vec![s("3"), s("two\nlines"), s("tab\there"), s(&midnight), None],
                vec![s("4"), None, s("x"), s(&midnight), s("true")],
            ]
        ))]
    );
}

/// `FIELD_OPTIONALLY_ENCLOSED_BY = '"'`: strings enclosed, with delimiters, newlines and
/// doubled quotes inside; `""` is the empty string, an empty unenclosed field and `\N`
/// are NULL.
const ENCLOSED_UNLOAD: &str = "1,\"a, b\",\"line one\nline two\",\"he said \"\"hi\"\"\"\n\
2,\"\",,\\N\n\
3,\"x\"\"\",\"\\N\",\"multi\r\nline\"\n";

#[test]
fn an_enclosed_unload_keeps_delimiters_newlines_quotes_and_empty_strings() {
    let options = options(|o| {
        o.field_optionally_enclosed_by = "\"".into();
        o.columns = vec![
            "ID INT".into(),
            "A VARCHAR".into(),
            "B VARCHAR".into(),
            "C VARCHAR".into(),
        ];
    });
    let items = read(
        ENCLOSED_UNLOAD.as_bytes(),
        &options,
        &ReadOptions::default(),
    );
    assert_eq!(
        items,
        [Ok((
            0,
            vec![
                vec![
                    s("1"),
                    s("a, b"),
                    s("line one\nline two"),
                    s("he said \"hi\"")
                ],
                vec![s("2"), s(""), None, None],
                vec![s("3"), s("x\""), s("\\N"), s("multi\r\nline")],
            ]
        ))]
    );
}

#[test]
fn row_numbers_count_records_after_multi_line_fields_and_errors_go_on() {
    let options = options(|o| {
        o.field_optionally_enclosed_by = "\"".into();
        o.columns = vec!["ID NUMBER(38,0)".into(), "TEXT VARCHAR".into()];
    });
    let input: &[u8] =
        b"0,\"one\ntwo\nthree\"\n1,plain\n2x,bad number\n3,\"ok\"\n4,too,many\n5,\xff\n6,end";
    let items = read(input, &options, &ReadOptions::default());
    assert_eq!(
        items,
        [
            Ok((
                0,
                vec![vec![s("0"), s("one\ntwo\nthree")], vec![s("1"), s("plain")]]
            )),
            Err("f.csv: row 2: column `ID`: `2x` is not a NUMBER(38,0): not a number".into()),
            Ok((3, vec![vec![s("3"), s("ok")]])),
            Err(
                "f.csv: row 4: 3 fields where the file has 2 columns (Snowflake's \
                 ERROR_ON_COLUMN_COUNT_MISMATCH)"
                    .into()
            ),
            Err("f.csv: row 5: not valid UTF-8 (at byte 2 of the record)".into()),
            Ok((6, vec![vec![s("6"), s("end")]])),
        ]
    );
}

#[test]
fn row_errors_carry_the_column_and_the_record_text() {
    let options = options(|o| o.columns = vec!["ID INT".into(), "NAME VARCHAR".into()]);
    let long = format!("1.5,{}\n", "n".repeat(400));
    let schema = csv_schema(&mut Cursor::new(long.as_bytes()), "f.csv", &options).unwrap();
    let mut batches = CsvBatches::new(
        Box::new(Cursor::new(long.into_bytes())),
        "f.csv".into(),
        Arc::new(options),
        schema,
        &ReadOptions::default(),
        1 << 20,
    );
    match batches.next() {
        Some(Err(SourceError::Row {
            file,
            row,
            column,
            reason,
            text,
        })) => {
            assert_eq!((file.as_str(), row), ("f.csv", 0));
            assert_eq!(column.as_deref(), Some("ID"));
            assert_eq!(
                reason,
                "column `ID`: `1.5` is not a NUMBER(38,0): more than 0 digits after the \
                 decimal point (the declared scale)"
            );
            let text = text.unwrap();
            assert_eq!(text.len(), ROW_TEXT_QUOTED);
            assert!(text.starts_with("1.5,nnn"));
        }
        other => panic!("expected a row error, got {other:?}"),
    }
    assert!(batches.next().is_none());
}

#[test]
fn a_null_in_a_not_null_column_is_a_row_error() {
    let options = options(|o| o.columns = vec!["ID INT NOT NULL".into()]);
    let items = read(b"1\n\\N\n\n3\n", &options, &ReadOptions::default());
    assert_eq!(
        items,
        [
            Ok((0, vec![vec![s("1")]])),
            Err(
                "f.csv: row 1: column `ID`: `\\N` is not a NUMBER(38,0) NOT NULL: the column \
                 is declared NOT NULL"
                    .into()
            ),
            Err(
                "f.csv: row 2: column `ID`: `` is not a NUMBER(38,0) NOT NULL: the column is \
                 declared NOT NULL"
                    .into()
            ),
            Ok((3, vec![vec![s("3")]])),
        ]
    );
}

#[test]
fn an_unclosed_enclosure_and_text_after_it_are_row_errors() {
    let options = options(|o| o.field_optionally_enclosed_by = "'".into());
    let items = read(
        b"'a'x,b\n'ok',c\n'open,d\n",
        &options,
        &ReadOptions::default(),
    );
    assert_eq!(
        items,
        [
            Err(
                "f.csv: row 0: text after the closing `'` of an enclosed field (a delimiter or \
                 the end of the record must follow it)"
                    .into()
            ),
            Ok((1, vec![vec![s("ok"), s("c")]])),
            Err(
                "f.csv: row 2: an enclosed field (`'`) is not closed before the end of the file"
                    .into()
            ),
        ]
    );
}

#[test]
fn headers_name_the_columns_and_are_not_rows() {
    let input = b"\xEF\xBB\xBFID,\"Full Name\"\r\n1,Ada\r\n";
    let header = options(|o| {
        o.header = true;
        o.field_optionally_enclosed_by = "\"".into();
    });
    let schema = csv_schema(&mut Cursor::new(&input[..]), "f.csv", &header).unwrap();
    let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["ID", "Full Name"]);
    assert!(
        schema
            .columns
            .iter()
            .all(|c| c.ty == SnowflakeType::Text && c.nullable)
    );
    assert_eq!(
        read(input, &header, &ReadOptions::default()),
        [Ok((0, vec![vec![s("1"), s("Ada")]]))]
    );

    let no_header = CsvOptions::default();
    let schema = csv_schema(&mut Cursor::new(&b"a,b,c\n"[..]), "f.csv", &no_header).unwrap();
    let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["_COL_0", "_COL_1", "_COL_2"]);
    let empty = csv_schema(&mut Cursor::new(&b""[..]), "f.csv", &no_header).unwrap();
    assert!(empty.columns.is_empty());

    let declared = options(|o| {
        o.header = true;
        o.columns = vec!["ID INT".into(), "NAME VARCHAR".into(), "X DATE".into()];
    });
    assert_eq!(
        csv_schema(&mut Cursor::new(&input[..]), "f.csv", &declared)
            .unwrap_err()
            .to_string(),
        "f.csv: the header has 2 fields but [source.csv] columns declares 3"
    );
}

#[test]
fn batches_are_cut_by_rows_and_bytes_from_the_start_row_with_the_projection() {
    let input: String = (0..10)
        .map(|i| format!("{i},name {i},{}\n", i * 10))
        .collect();
    let options = options(|o| {
        o.columns = vec![
            "ID INT".into(),
            "NAME STRING".into(),
            "N NUMBER(6,2)".into(),
        ];
    });
    let by_rows = read(
        input.as_bytes(),
        &options,
        &ReadOptions {
            batch_rows: 4,
            projection: Some(vec![2, 0, 2]),
            start_row: 3,
        },
    );
    let row = |i: u64| {
        vec![
            s(&format!("{}.00", i * 10)),
            s(&i.to_string()),
            s(&format!("{}.00", i * 10)),
        ]
    };
    assert_eq!(
        by_rows,
        [
            Ok((3, (3..7).map(row).collect())),
            Ok((7, (7..10).map(row).collect())),
        ]
    );

    let schema = csv_schema(&mut Cursor::new(input.as_bytes()), "f.csv", &options).unwrap();
    let sizes: Vec<(u64, usize)> = CsvBatches::new(
        Box::new(Cursor::new(input.clone().into_bytes())),
        "f.csv".into(),
        Arc::new(options.clone()),
        schema,
        &ReadOptions::default(),
        30,
    )
    .map(|batch| {
        let batch = batch.unwrap();
        (batch.first_row, batch.batch.num_rows())
    })
    .collect();
    // Rows are 11 or 12 bytes: a batch closes once it holds 30 bytes or more.
    assert_eq!(sizes, [(0, 3), (3, 3), (6, 3), (9, 1)]);

    let bad = CsvBatches::new(
        Box::new(Cursor::new(Vec::new())),
        "f.csv".into(),
        Arc::new(options.clone()),
        TextSchema::new(options.declared_columns().unwrap()),
        &ReadOptions {
            projection: Some(vec![3]),
            ..ReadOptions::default()
        },
        30,
    )
    .map(|item| item.map(|_| ()).map_err(|e| e.to_string()))
    .collect::<Vec<_>>();
    assert_eq!(
        bad,
        [Err(
            "f.csv: column 3 does not exist (the file has 3 columns)".into()
        )]
    );
}

#[test]
fn other_delimiters_and_null_settings_are_honoured() {
    let options = options(|o| {
        o.field_delimiter = "|".into();
        o.record_delimiter = ";".into();
        o.escape_unenclosed_field = NONE.into();
        o.null_if = vec!["NULL".into(), "".into()];
        o.empty_field_as_null = false;
    });
    assert_eq!(
        read(b"a\\b|NULL|;|x|y;", &options, &ReadOptions::default()),
        [Ok((
            0,
            vec![vec![s("a\\b"), None, None], vec![None, s("x"), s("y")]]
        ))]
    );
    let keep_empty = self::options(|o| o.empty_field_as_null = false);
    assert_eq!(
        read(b",\\N\n", &keep_empty, &ReadOptions::default()),
        [Ok((0, vec![vec![s(""), None]]))]
    );
    let tabs = self::options(|o| o.field_delimiter = "\\t".into());
    assert_eq!(
        read(b"a,b\tc\n", &tabs, &ReadOptions::default()),
        [Ok((0, vec![vec![s("a,b"), s("c")]]))]
    );
}

#[test]
fn bad_options_name_the_key() {
    let check =
        |configure: fn(&mut CsvOptions)| options(configure).check().unwrap_err().to_string();
    assert_eq!(
        check(|o| o.field_delimiter = ";;".into()),
        "[source.csv] field_delimiter = \";;\": must be one ASCII character (Snowflake's \
         multi-character and non-ASCII delimiters are not supported)"
    );
    assert_eq!(
        check(|o| o.record_delimiter = "NONE".into()),
        "[source.csv] record_delimiter = \"NONE\": must be one character (NONE is not \
         supported here)"
    );
    assert_eq!(
        check(|o| o.field_optionally_enclosed_by = "|".into()),
        "[source.csv] field_optionally_enclosed_by = \"|\": must be \"NONE\", \"\\\"\" or \"'\""
    );
    assert_eq!(
        check(|o| o.escape_unenclosed_field = ",".into()),
        "[source.csv] escape_unenclosed_field = \",\": is also the field_delimiter"
    );
    assert_eq!(
        check(|o| o.columns = vec!["ID INT".into(), "T TIME".into()]),
        "[source.csv] columns[1] = \"T TIME\": TIME is not supported: times of day are not in \
         the plugin contract (as for Parquet); declare the column VARCHAR to receive its text"
    );
    assert_eq!(CsvOptions::default().check(), Ok(()));
    let quoted = options(|o| {
        o.field_optionally_enclosed_by = "\"".into();
        o.escape = "\"".into();
    });
    assert_eq!(quoted.check(), Ok(()));
}

#[test]
fn records_longer_than_the_buffer_are_read_whole_and_too_long_ones_end_the_read() {
    let long = "x".repeat(3 * scan::READ_CHUNK);
    let input = format!("1,\"{long}\"\"\n,{long}\"\n2,short\n");
    let options = options(|o| o.field_optionally_enclosed_by = "\"".into());
    let schema = csv_schema(&mut Cursor::new(input.as_bytes()), "f.csv", &options).unwrap();
    for chunk in [usize::MAX, 4096, 1] {
        let reader: Box<dyn BufRead + Send> = Box::new(BufReader::new(Trickle {
            data: input.clone().into_bytes(),
            at: 0,
            chunk,
        }));
        let batches: Vec<RecordBatch> = CsvBatches::new(
            reader,
            "f.csv".into(),
            Arc::new(options.clone()),
            Arc::clone(&schema),
            &ReadOptions::default(),
            1 << 30,
        )
        .map(|batch| batch.unwrap().batch)
        .collect();
        let rows: Vec<Vec<Option<String>>> = batches.iter().flat_map(cells).collect();
        assert_eq!(
            rows,
            [
                vec![s("1"), s(&format!("{long}\"\n,{long}"))],
                vec![s("2"), s("short")]
            ],
            "read {chunk} bytes at a time"
        );
    }

    let unclosed = format!("1,\"{long}");
    let mut scanner = scan::Scanner::new(
        Cursor::new(unclosed.into_bytes()),
        options.dialect().unwrap(),
    )
    .with_max_record(scan::READ_CHUNK * 2);
    let error = scanner.next_record().unwrap_err();
    assert_eq!(
        scan_error("f.csv", error).to_string(),
        "f.csv: row group 0: cannot decode: a record is longer than 256 MiB (an enclosed field \
         never closed?)"
    );
}

/// Hands out `data` `chunk` bytes at a time, then fails as a gzip stream cut short does.
struct CutShort {
    data: Vec<u8>,
    at: usize,
    chunk: usize,
}

impl Read for CutShort {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.data.len() {
            return Err(std::io::Error::other("incomplete deflate stream"));
        }
        let n = self.chunk.min(buf.len()).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn records_before_a_stream_error_are_rows_and_the_cut_one_is_not() {
    // The records a truncated `.csv.gz` still gives are read (they were lost when the
    // error came in the same buffer fill); the cut-off last one is not a row.
    let input = b"1,a\n2,b\n3,c\n4,cut sh";
    let options = CsvOptions::default();
    let schema = csv_schema(&mut Cursor::new(&input[..]), "f.csv", &options).unwrap();
    for chunk in [usize::MAX, 5, 1] {
        let reader: Box<dyn BufRead + Send> = Box::new(BufReader::new(CutShort {
            data: input.to_vec(),
            at: 0,
            chunk,
        }));
        let items: Vec<Item> = CsvBatches::new(
            reader,
            "f.csv".into(),
            Arc::new(options.clone()),
            Arc::clone(&schema),
            &ReadOptions::default(),
            1 << 20,
        )
        .map(|item| {
            item.map(|batch| (batch.first_row, cells(&batch.batch)))
                .map_err(|error| error.to_string())
        })
        .collect();
        let rows = [["1", "a"], ["2", "b"], ["3", "c"]]
            .iter()
            .map(|row| row.iter().map(|v| s(v)).collect())
            .collect();
        assert_eq!(items.len(), 2, "{chunk}: {items:?}");
        assert_eq!(items[0], Ok((0, rows)), "{chunk} bytes at a time");
        let error = items[1].as_ref().unwrap_err();
        assert!(error.contains("incomplete deflate stream"), "{error}");
    }
}
