//! Declared columns (`[source.json] columns`): values read as Snowflake writes them, row
//! errors for what does not fit, declarations that cannot be read.

use super::*;

fn declared(columns: &[&str]) -> JsonOptions {
    JsonOptions {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        ..JsonOptions::default()
    }
}

#[test]
fn declared_columns_read_values_as_snowflake_writes_them() {
    let declarations = [
        "CUSTOMER_ID NUMBER(38,0) NOT NULL",
        "NAME VARCHAR",
        "BALANCE NUMBER(10,2)",
        "UPDATED_AT TIMESTAMP_NTZ(3)",
        "ATTRS VARIANT",
        "ACTIVE BOOLEAN",
        "SIGNED_UP DATE",
        "NOTE TEXT",
    ];
    let options = declared(&declarations);
    let text = concat!(
        r#"{"ACTIVE":true,"ATTRS":{"z":1.50,"a":[1]},"BALANCE":10.5,"CUSTOMER_ID":12345678901234567890123,"NAME":"Ann","NOTE":12.50,"SIGNED_UP":"2024-01-02","UPDATED_AT":"2024-05-01 12:34:56.789"}"#,
        "\n",
        r#"{"CUSTOMER_ID":2,"ATTRS":"text","NOTE":{"b":1}}"#,
        "\n"
    );
    // The lines are not read for a declared schema: columns in declared order.
    let schema = schema_of("not even json\n", &options).unwrap();
    let parsed: Vec<DeclaredColumn> = declarations
        .iter()
        .map(|d| DeclaredColumn::parse(d).unwrap())
        .collect();
    assert_eq!(schema, TextSchema::new(parsed));
    assert!(schema.inferred.is_none());
    let batch = only_batch(all(text, &schema));
    let id = col::<Decimal128Array>(&batch, "CUSTOMER_ID");
    assert_eq!(id.value(0), 12_345_678_901_234_567_890_123, "every digit");
    assert_eq!(id.value(1), 2);
    assert_eq!(col::<Decimal128Array>(&batch, "BALANCE").value(0), 1050);
    assert!(
        col::<Decimal128Array>(&batch, "BALANCE").is_null(1),
        "a missing key is NULL"
    );
    assert_eq!(
        col::<TimestampMillisecondArray>(&batch, "UPDATED_AT").value(0),
        1_714_566_896_789
    );
    let attrs = col::<StringArray>(&batch, "ATTRS");
    assert_eq!(
        attrs.value(0),
        r#"{"z":1.50,"a":[1]}"#,
        "VARIANT as written"
    );
    assert_eq!(attrs.value(1), r#""text""#);
    let note = col::<StringArray>(&batch, "NOTE");
    assert_eq!((note.value(0), note.value(1)), ("12.50", r#"{"b":1}"#));
    assert!(col::<BooleanArray>(&batch, "ACTIVE").value(0));
    assert_eq!(col::<Date32Array>(&batch, "SIGNED_UP").value(0), 19_724);
    assert_eq!(col::<StringArray>(&batch, "NAME").null_count(), 1);
}

#[test]
fn declared_columns_make_row_errors_of_what_does_not_fit() {
    let options = declared(&[
        "ID NUMBER(38,0) NOT NULL",
        "AT TIMESTAMP_NTZ(3)",
        "OK BOOLEAN",
    ]);
    let schema = schema_of("", &options).unwrap();
    let text = concat!(
        r#"{"ID":1,"AT":"2024-05-01 12:34:56.789","OK":true}"#,
        "\n",
        r#"{"ID":2,"AT":"not a time"}"#,
        "\n",
        r#"{"AT":"2024-05-01 12:34:56.789"}"#,
        "\n",
        r#"{"ID":4,"OK":[true]}"#,
        "\n",
        r#"{"ID":5,"EXTRA":1}"#,
        "\n",
        r#"{"ID":6.5}"#,
        "\n",
        r#"{"ID":7,"OK":false}"#,
        "\n"
    );
    let results = all(text, &schema);
    assert_eq!(
        layout(&results),
        [
            ('b', 0, 1),
            ('e', 1, 0),
            ('e', 2, 0),
            ('e', 3, 0),
            ('e', 4, 0),
            ('e', 5, 0),
            ('b', 6, 1)
        ]
    );
    let (_, column, reason, _) = row_error(&results[1]);
    assert_eq!(column.as_deref(), Some("AT"));
    assert!(
        reason.starts_with("column `AT`: `not a time` is not a TIMESTAMP_NTZ(3)"),
        "{reason}"
    );
    let (_, column, reason, _) = row_error(&results[2]);
    assert_eq!(column.as_deref(), Some("ID"));
    assert!(reason.contains("NOT NULL"), "{reason}");
    let (_, column, reason, _) = row_error(&results[3]);
    assert_eq!(column.as_deref(), Some("OK"));
    assert!(reason.contains("BOOLEAN"), "{reason}");
    let (_, column, reason, _) = row_error(&results[4]);
    assert_eq!(column.as_deref(), Some("EXTRA"));
    assert!(
        reason.contains("key `EXTRA` is not a declared column"),
        "{reason}"
    );
    assert!(reason.contains("[source.json] columns"), "{reason}");
    let (_, column, reason, _) = row_error(&results[5]);
    assert_eq!(column.as_deref(), Some("ID"));
    assert!(reason.contains("`6.5` is not a NUMBER(38,0)"), "{reason}");
    // A row that failed in a later column left nothing behind in the earlier ones.
    let batch = &results[6].as_ref().unwrap().batch;
    assert_eq!(col::<Decimal128Array>(batch, "ID").values(), &[7]);
    assert_eq!(batch.num_rows(), 1);
}

#[test]
fn a_declaration_that_cannot_be_read_names_its_entry() {
    let error = schema_of("", &declared(&["ID NUMBER(38,0)", "WHEN SOMETYPE"])).unwrap_err();
    assert!(
        matches!(error, SourceError::Declaration { entry: 2, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with(
            "data_0_0_0.json: [source.json] columns entry 2: column declaration `WHEN SOMETYPE`"
        ),
        "{message}"
    );
}
