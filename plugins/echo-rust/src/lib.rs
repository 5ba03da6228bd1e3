//! Test plugin: echoes every input cell back, exactly as received.
//!
//! One `Echo` entity per row, external id = the file row number, with
//! - one property per input column, named as the column, holding the cell as it arrived
//!   (same kind: a decimal keeps its scale, a timestamp its unit, a null is an explicit null;
//!   a list column becomes JSON text);
//! - `_file`: the file key;
//! - `_partitions`: JSON object of the path's partitions (a `_NULL_` partition is `null`);
//! - `_schema`: JSON array of `{"name", "type", "nullable"}`, types written like
//!   `decimal(38,0)`, `timestamp(millis,wall-clock)`, `list<text>`.
//!
//! Host tests use it to prove that each Parquet value reaches a plugin unchanged.

use stagepush_plugin::json;
use stagepush_plugin::prelude::*;

struct Echo {
    columns: Vec<(Col, String)>,
    schema_json: String,
    partitions_json: Vec<u8>,
}

impl Transform for Echo {
    fn describe() -> Info {
        Info::new("echo", env!("CARGO_PKG_VERSION"))
            .description("test plugin: echoes every input cell back as a property")
    }

    fn init(schema: &Schema, _config: &Config) -> Result<Self, String> {
        let mut s = Vec::new();
        s.push(b'[');
        for (i, c) in schema.iter().enumerate() {
            if i > 0 {
                s.push(b',');
            }
            s.extend_from_slice(b"{\"name\":");
            json::write_str(&mut s, c.name());
            s.extend_from_slice(b",\"type\":");
            json::write_str(&mut s, &c.ty().to_string());
            s.extend_from_slice(if c.nullable() {
                b",\"nullable\":true}"
            } else {
                b",\"nullable\":false}"
            });
        }
        s.push(b']');
        Ok(Echo {
            columns: schema
                .iter()
                .map(|c| (c.col(), c.name().to_string()))
                .collect(),
            schema_json: String::from_utf8(s).map_err(|e| e.to_string())?,
            partitions_json: Vec::new(),
        })
    }

    fn transform(&mut self, row: &Row<'_>, out: &mut Out) -> Result<(), String> {
        let p = &mut self.partitions_json;
        p.clear();
        p.push(b'{');
        for (i, (k, v)) in row.partitions().enumerate() {
            if i > 0 {
                p.push(b',');
            }
            json::write_str(p, k);
            p.push(b':');
            match v {
                Some(v) => json::write_str(p, v),
                None => p.extend_from_slice(b"null"),
            }
        }
        p.push(b'}');
        let partitions = std::str::from_utf8(p).map_err(|e| e.to_string())?;

        let mut entity = out.entity("Echo", row.row_number());
        for (col, name) in &self.columns {
            entity = entity.prop_or_null(name, row.get(*col));
        }
        entity
            .prop("_file", row.file_key())
            .prop_json("_partitions", partitions)
            .prop_json("_schema", self.schema_json.as_str())
            .finish()
    }
}

stagepush_plugin::export!(Echo);

#[cfg(test)]
mod tests {
    use super::*;
    use stagepush_plugin::testing::{Harness, Val, col, ty};

    #[test]
    fn echoes_cells_file_and_schema() {
        let mut ts = col("AT", ty::timestamp_ntz(TimeUnit::Millis));
        ts.nullable = false;
        let cols = vec![
            col("ID", ty::decimal(38, 0)),
            col("PRICE", ty::decimal(6, 2)),
            ts,
            col("TAGS", ty::list(ty::text())),
            col("V", ty::json()),
            col("B", ty::binary()),
        ];
        let mut h = Harness::<Echo>::new(cols, &[]).unwrap();
        h.file(
            "u/date=2024-05-01/r=_NULL_/data_0_0_0.snappy.parquet",
            &[("date", Some("2024-05-01")), ("r", None)],
        );
        let r = h.run(vec![vec![
            Val::dec(1, 0),
            Val::dec(-1230, 2),
            Val::Timestamp(7, TimeUnit::Millis),
            Val::List(vec!["a".into(), Val::Null]),
            Val::json(r#"{"k":[1,2]}"#),
            Val::Null,
        ]]);
        let e = &r.entities[0];
        assert_eq!(
            (e.entity_type.as_str(), e.external_id.as_str()),
            ("Echo", "0")
        );
        assert_eq!(e.prop("ID"), Some(&Val::dec(1, 0)));
        assert_eq!(e.prop("PRICE"), Some(&Val::dec(-1230, 2)));
        assert_eq!(e.prop("AT"), Some(&Val::Timestamp(7, TimeUnit::Millis)));
        assert_eq!(e.prop("TAGS"), Some(&Val::json(r#"["a",null]"#)));
        assert_eq!(e.prop("V"), Some(&Val::json(r#"{"k":[1,2]}"#)));
        assert_eq!(e.prop("B"), Some(&Val::Null));
        assert_eq!(
            e.prop("_file"),
            Some(&Val::from(
                "u/date=2024-05-01/r=_NULL_/data_0_0_0.snappy.parquet"
            ))
        );
        assert_eq!(
            e.prop("_partitions"),
            Some(&Val::json(r#"{"date":"2024-05-01","r":null}"#))
        );
        assert_eq!(
            e.prop("_schema").and_then(Val::as_str),
            Some(concat!(
                r#"[{"name":"ID","type":"decimal(38,0)","nullable":true},"#,
                r#"{"name":"PRICE","type":"decimal(6,2)","nullable":true},"#,
                r#"{"name":"AT","type":"timestamp(millis,wall-clock)","nullable":false},"#,
                r#"{"name":"TAGS","type":"list<text>","nullable":true},"#,
                r#"{"name":"V","type":"json","nullable":true},"#,
                r#"{"name":"B","type":"binary","nullable":true}]"#
            ))
        );
        assert_eq!(e.props.len(), 9);
    }
}
