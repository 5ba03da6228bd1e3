//! Native tests for plugins: build batches from rows, run a [`Transform`] over them through
//! the same code the WebAssembly export uses, and read the entities back.
//!
//! ```
//! use stagepush_plugin::prelude::*;
//! use stagepush_plugin::testing::{Harness, Val, col, ty};
//!
//! struct Upper { name: Col }
//! impl Transform for Upper {
//!     fn describe() -> Info { Info::new("upper", "0.1.0") }
//!     fn init(s: &Schema, _: &Config) -> Result<Self, String> {
//!         Ok(Upper { name: s.require("NAME")? })
//!     }
//!     fn transform(&mut self, row: &Row<'_>, out: &mut Out) -> Result<(), String> {
//!         let name = row.require(self.name)?;
//!         out.entity("Name", row.row_number()).prop("upper", name.to_string().to_uppercase()).finish()
//!     }
//! }
//!
//! let mut h = Harness::<Upper>::new(vec![col("NAME", ty::text())], &[]).unwrap();
//! let r = h.run(vec![vec![Val::from("ann")], vec![Val::Null]]);
//! assert_eq!(r.entities[0].external_id, "0");
//! assert_eq!(r.entities[0].prop("upper"), Some(&Val::from("ANN")));
//! assert_eq!(r.errors, [(1, "NAME is null".to_string())]);
//! ```

use crate::Transform;
use crate::bindings::stagepush::transform::output::{BatchOutput, Cells};
use crate::bindings::stagepush::transform::types::{
    Batch, ByteColumn, Column, ColumnData, ColumnSchema, ColumnType, Decimal as WitDecimal,
    ListValues, ScalarType, SourceFile, Values,
};
use crate::packed::{kind, kind_unit, u32_at, word_at};
use crate::runtime::Runner;
use crate::value::{Date, Decimal, TimeUnit, Timestamp};

/// An owned cell: input rows are made of these, and output properties come back as these.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    /// Null.
    Null,
    /// Boolean.
    Bool(bool),
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// Exact decimal.
    Decimal(Decimal),
    /// Text.
    Text(String),
    /// JSON text.
    Json(String),
    /// Days since 1970-01-01.
    Date(i32),
    /// Timestamp value and unit (as input, the unit must be the column's; entities carry no
    /// wall-clock flag).
    Timestamp(i64, TimeUnit),
    /// Bytes.
    Binary(Vec<u8>),
    /// List items (input only: a list property comes back as `Json`).
    List(Vec<Val>),
}

impl Val {
    /// A decimal `value × 10^-scale`.
    pub fn dec(value: i128, scale: i8) -> Val {
        Val::Decimal(Decimal::new(value, scale))
    }

    /// JSON text.
    pub fn json(s: &str) -> Val {
        Val::Json(s.into())
    }

    /// The text of a `Text` or `Json` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Text(s) | Val::Json(s) => Some(s),
            _ => None,
        }
    }
}

impl From<&str> for Val {
    fn from(s: &str) -> Val {
        Val::Text(s.into())
    }
}
impl From<String> for Val {
    fn from(s: String) -> Val {
        Val::Text(s)
    }
}
impl From<bool> for Val {
    fn from(b: bool) -> Val {
        Val::Bool(b)
    }
}
impl From<i64> for Val {
    fn from(i: i64) -> Val {
        Val::Int(i)
    }
}
impl From<i32> for Val {
    fn from(i: i32) -> Val {
        Val::Int(i.into())
    }
}
impl From<f64> for Val {
    fn from(f: f64) -> Val {
        Val::Float(f)
    }
}
impl From<Decimal> for Val {
    fn from(d: Decimal) -> Val {
        Val::Decimal(d)
    }
}
impl From<Date> for Val {
    fn from(d: Date) -> Val {
        Val::Date(d.0)
    }
}
impl From<Timestamp> for Val {
    fn from(t: Timestamp) -> Val {
        Val::Timestamp(t.value, t.unit)
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Val {
        v.map_or(Val::Null, Into::into)
    }
}

/// Column types, for [`col`].
pub mod ty {
    use super::*;
    use crate::TimestampType;

    /// `boolean`.
    pub fn boolean() -> ColumnType {
        ColumnType::Scalar(ScalarType::Boolean)
    }
    /// `integer`.
    pub fn integer() -> ColumnType {
        ColumnType::Scalar(ScalarType::Integer)
    }
    /// `float`.
    pub fn float() -> ColumnType {
        ColumnType::Scalar(ScalarType::Float)
    }
    /// `decimal(precision,scale)`.
    pub fn decimal(precision: u8, scale: i8) -> ColumnType {
        ColumnType::Scalar(ScalarType::Decimal((precision, scale)))
    }
    /// `text`.
    pub fn text() -> ColumnType {
        ColumnType::Scalar(ScalarType::Text)
    }
    /// `json`.
    pub fn json() -> ColumnType {
        ColumnType::Scalar(ScalarType::Json)
    }
    /// `date`.
    pub fn date() -> ColumnType {
        ColumnType::Scalar(ScalarType::Date)
    }
    /// `timestamp(unit, wall-clock)`: Snowflake's TIMESTAMP_NTZ.
    pub fn timestamp_ntz(unit: TimeUnit) -> ColumnType {
        ColumnType::Scalar(ScalarType::Timestamp(TimestampType {
            unit,
            wall_clock: true,
        }))
    }
    /// `timestamp(unit, utc)`.
    pub fn timestamp_utc(unit: TimeUnit) -> ColumnType {
        ColumnType::Scalar(ScalarType::Timestamp(TimestampType {
            unit,
            wall_clock: false,
        }))
    }
    /// `binary`.
    pub fn binary() -> ColumnType {
        ColumnType::Scalar(ScalarType::Binary)
    }
    /// `list<item>`.
    pub fn list(item: ColumnType) -> ColumnType {
        match item {
            ColumnType::Scalar(s) => ColumnType::List(s),
            ColumnType::List(_) => panic!("lists of lists do not exist in the contract"),
        }
    }
}

/// A nullable column.
pub fn col(name: &str, ty: ColumnType) -> ColumnSchema {
    ColumnSchema {
        name: name.into(),
        type_: ty,
        nullable: true,
    }
}

/// A batch as the host would send it: the `sent` columns (schema indices) of `rows`.
///
/// Panics when a value does not fit its column's type.
pub fn build_batch(
    schema: &[ColumnSchema],
    sent: &[u32],
    rows: &[Vec<Val>],
    file: SourceFile,
    first_row: u64,
) -> Batch {
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(
            r.len(),
            schema.len(),
            "row {i}: {} values for {} columns",
            r.len(),
            schema.len()
        );
    }
    let columns = sent
        .iter()
        .map(|&si| {
            let c = &schema[si as usize];
            let cells: Vec<&Val> = rows.iter().map(|r| &r[si as usize]).collect();
            let mut nulls: Vec<u8> = cells.iter().map(|v| u8::from(**v == Val::Null)).collect();
            if !nulls.contains(&1) {
                nulls.clear();
            }
            let data = match c.type_ {
                ColumnType::Scalar(t) => ColumnData::Scalar(values(&c.name, t, &cells)),
                ColumnType::List(t) => {
                    let mut offsets = vec![0u32];
                    let mut items: Vec<&Val> = Vec::new();
                    for v in &cells {
                        match v {
                            Val::Null => {}
                            Val::List(l) => items.extend(l),
                            v => panic!("column {}: {v:?} is not a list", c.name),
                        }
                        offsets.push(items.len() as u32);
                    }
                    let mut item_nulls: Vec<u8> =
                        items.iter().map(|v| u8::from(**v == Val::Null)).collect();
                    if !item_nulls.contains(&1) {
                        item_nulls.clear();
                    }
                    ColumnData::List(ListValues {
                        offsets,
                        item_nulls,
                        items: values(&c.name, t, &items),
                    })
                }
            };
            Column { nulls, data }
        })
        .collect();
    Batch {
        file,
        first_row,
        row_count: rows.len() as u32,
        columns,
    }
}

fn values(name: &str, t: ScalarType, cells: &[&Val]) -> Values {
    fn bytes<'v>(cells: &[&'v Val], f: impl Fn(&'v Val) -> Option<&'v [u8]>) -> Option<ByteColumn> {
        let mut data = Vec::new();
        let mut offsets = vec![0u32];
        for v in cells {
            match v {
                Val::Null => {}
                v => data.extend_from_slice(f(v)?),
            }
            offsets.push(data.len() as u32);
        }
        Some(ByteColumn { data, offsets })
    }
    fn each<'v, T: Default>(cells: &[&'v Val], f: impl Fn(&'v Val) -> Option<T>) -> Option<Vec<T>> {
        cells
            .iter()
            .map(|v| match v {
                Val::Null => Some(T::default()),
                v => f(v),
            })
            .collect()
    }
    let v = match t {
        ScalarType::Boolean => each(cells, |v| match v {
            Val::Bool(b) => Some(u8::from(*b)),
            _ => None,
        })
        .map(Values::Boolean),
        ScalarType::Integer => each(cells, |v| match v {
            Val::Int(i) => Some(*i),
            _ => None,
        })
        .map(Values::Integer),
        ScalarType::Float => each(cells, |v| match v {
            Val::Float(f) => Some(*f),
            _ => None,
        })
        .map(Values::Float),
        ScalarType::Decimal(_) => cells
            .iter()
            .map(|v| match v {
                Val::Null => Some(WitDecimal {
                    lo: 0,
                    hi: 0,
                    scale: 0,
                }),
                Val::Decimal(d) => Some(WitDecimal {
                    lo: d.value as u64,
                    hi: (d.value >> 64) as i64,
                    scale: d.scale,
                }),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(Values::Decimal),
        ScalarType::Text => bytes(cells, |v| match v {
            Val::Text(s) => Some(s.as_bytes()),
            _ => None,
        })
        .map(Values::Text),
        ScalarType::Json => bytes(cells, |v| match v {
            Val::Json(s) => Some(s.as_bytes()),
            _ => None,
        })
        .map(Values::Json),
        ScalarType::Date => each(cells, |v| match v {
            Val::Date(d) => Some(*d),
            _ => None,
        })
        .map(Values::Date),
        ScalarType::Timestamp(tt) => each(cells, |v| match v {
            Val::Timestamp(x, u) if *u == tt.unit => Some(*x),
            _ => None,
        })
        .map(Values::Timestamp),
        ScalarType::Binary => bytes(cells, |v| match v {
            Val::Binary(b) => Some(b.as_slice()),
            _ => None,
        })
        .map(Values::Binary),
    };
    v.unwrap_or_else(|| panic!("column {name}: a value does not fit type {t}"))
}

/// One entity, decoded from the columnar output.
#[derive(Clone, Debug, PartialEq)]
pub struct Entity {
    /// Index of the batch row it came from.
    pub row: u32,
    /// Entity type.
    pub entity_type: String,
    /// External id.
    pub external_id: String,
    /// `Null`, `Date` or `Timestamp`.
    pub timestamp: Val,
    /// Tombstone flag.
    pub deleted: bool,
    /// Properties, in the order written.
    pub props: Vec<(String, Val)>,
}

impl Entity {
    /// The value of property `name`, if present.
    pub fn prop(&self, name: &str) -> Option<&Val> {
        self.props.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// What a batch produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Results {
    /// Entities, in row order.
    pub entities: Vec<Entity>,
    /// Row errors: (batch row, message).
    pub errors: Vec<(u32, String)>,
}

/// Decodes a batch's packed output, checking every invariant the contract states (panics
/// on a violation: that is an SDK bug).
pub fn decode(o: &BatchOutput, row_count: u32) -> Results {
    let e = &o.entities;
    let n = e.count as usize;
    for (what, len, width) in [
        ("rows", e.rows.len(), 4),
        ("entity-types", e.entity_types.len(), 4),
        ("deleted", e.deleted.len(), 1),
        ("external-ids", e.external_ids.len(), 8),
        ("timestamps", e.timestamps.kinds.len(), 1),
        ("prop-offsets", e.prop_offsets.len(), 4),
    ] {
        let expected = if what == "prop-offsets" { n + 1 } else { n };
        assert_eq!(
            len,
            expected * width,
            "{what}: {len} bytes for {n} entities"
        );
    }
    let u32s = |column: &[u8]| -> Vec<u32> {
        (0..column.len() / 4)
            .filter_map(|i| u32_at(column, i))
            .collect()
    };
    let (rows, offsets, names) = (u32s(&e.rows), u32s(&e.prop_offsets), u32s(&e.prop_names));
    let props = e.prop_values.kinds.len();
    assert_eq!(offsets[0], 0, "prop-offsets start");
    assert!(
        offsets.windows(2).all(|w| w[0] <= w[1]),
        "prop-offsets decrease"
    );
    assert_eq!(offsets[n] as usize, props, "prop-offsets end");
    assert_eq!(names.len(), props, "prop names/values");
    assert!(rows.windows(2).all(|w| w[0] <= w[1]), "rows decrease");
    assert!(rows.iter().all(|&r| r < row_count), "row out of range");
    let bytes = |offset: u64, len: u64| -> Vec<u8> {
        e.bytes
            .get(offset as usize..(offset + len) as usize)
            .expect("span out of range")
            .to_vec()
    };
    let text = |b: Vec<u8>| String::from_utf8(b).expect("text span is not UTF-8");
    let name = |i: u32| {
        e.names
            .get(i as usize)
            .expect("name index out of range")
            .clone()
    };
    let val = |cells: &Cells, i: usize| -> Val {
        let (k, word) = word_at(cells, i).expect("cell out of range");
        let span = || bytes(word & 0xffff_ffff, word >> 32);
        match k {
            kind::NULL => Val::Null,
            kind::BOOLEAN => Val::Bool(word != 0),
            kind::INTEGER => Val::Int(word as i64),
            kind::FLOAT => Val::Float(f64::from_bits(word)),
            kind::DECIMAL => {
                let d = cells.decimals[word as usize];
                Val::dec((i128::from(d.hi) << 64) | i128::from(d.lo), d.scale)
            }
            kind::TEXT => Val::Text(text(span())),
            kind::JSON => Val::Json(text(span())),
            kind::DATE => Val::Date(i32::try_from(word as i64).expect("date out of range")),
            kind::BINARY => Val::Binary(span()),
            k => Val::Timestamp(word as i64, kind_unit(k).expect("unknown cell kind")),
        }
    };
    let entities: Vec<Entity> = (0..n)
        .map(|i| {
            let (a, b) = (offsets[i] as usize, offsets[i + 1] as usize);
            let timestamp = val(&e.timestamps, i);
            assert!(
                matches!(timestamp, Val::Null | Val::Date(_) | Val::Timestamp(..)),
                "timestamp {timestamp:?}"
            );
            let id = |j| u64::from(u32_at(&e.external_ids, 2 * i + j).unwrap_or_default());
            Entity {
                row: rows[i],
                entity_type: name(u32_at(&e.entity_types, i).unwrap_or_default()),
                external_id: text(bytes(id(0), id(1))),
                timestamp,
                deleted: e.deleted[i] != 0,
                props: (a..b)
                    .map(|p| (name(names[p]), val(&e.prop_values, p)))
                    .collect(),
            }
        })
        .collect();
    let errors: Vec<(u32, String)> = o
        .errors
        .iter()
        .map(|r| (r.row, r.message.clone()))
        .collect();
    for (r, _) in &errors {
        assert!(*r < row_count, "error row out of range");
        assert!(!rows.contains(r), "row {r} has both an error and entities");
    }
    Results { entities, errors }
}

/// Runs a [`Transform`] natively, batch by batch, as the host would.
pub struct Harness<T> {
    runner: Runner<T>,
    schema: Vec<ColumnSchema>,
    asked: Option<Vec<u32>>,
    file: SourceFile,
    next_row: u64,
}

impl<T: Transform> Harness<T> {
    /// Describes and initialises the plugin with these columns and `key=value` pairs
    /// (`Err` is `init`'s refusal).
    pub fn new(schema: Vec<ColumnSchema>, config: &[(&str, &str)]) -> Result<Harness<T>, String> {
        let config = config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (runner, init) = Runner::<T>::new(schema.clone(), config)?;
        Ok(Harness {
            runner,
            schema,
            asked: init.columns,
            file: SourceFile {
                key: "test/data_0_0_0.snappy.parquet".into(),
                partitions: Vec::new(),
            },
            next_row: 0,
        })
    }

    /// The columns the plugin asked for in `init` (`None`: all).
    pub fn asked_columns(&self) -> Option<&[u32]> {
        self.asked.as_deref()
    }

    /// Starts a new file (row numbers restart at 0).
    pub fn file(&mut self, key: &str, partitions: &[(&str, Option<&str>)]) -> &mut Self {
        self.file = SourceFile {
            key: key.into(),
            partitions: partitions
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(Into::into)))
                .collect(),
        };
        self.next_row = 0;
        self
    }

    /// Sends `rows` (all columns of the schema, in order) as one batch; row numbers go on
    /// from the previous batch of the same file.
    pub fn run(&mut self, rows: Vec<Vec<Val>>) -> Results {
        let batch = build_batch(
            &self.schema,
            self.runner.sent(),
            &rows,
            self.file.clone(),
            self.next_row,
        );
        self.next_row += rows.len() as u64;
        self.run_batch(&batch)
    }

    /// Sends a batch as is (e.g. a malformed one).
    pub fn run_batch(&mut self, batch: &Batch) -> Results {
        let out = self.runner.run(batch);
        decode(&out, batch.row_count)
    }

    /// The batch [`run`](Self::run) would send for `rows` (starting at file row
    /// `first_row`), to send with [`run_batch`](Self::run_batch) or
    /// [`run_raw`](Self::run_raw).
    pub fn batch(&self, rows: &[Vec<Val>], first_row: u64) -> Batch {
        build_batch(
            &self.schema,
            self.runner.sent(),
            rows,
            self.file.clone(),
            first_row,
        )
    }

    /// Runs a batch and returns the raw columnar output, undecoded (for benchmarks).
    pub fn run_raw(&mut self, batch: &Batch) -> BatchOutput {
        self.runner.run(batch)
    }

    /// The plugin's state.
    pub fn plugin(&mut self) -> &mut T {
        self.runner.plugin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    /// Echoes every column; fails rows whose `FAIL` column is true after writing an entity.
    struct Probe {
        cols: Vec<(Col, String)>,
        fail: Option<Col>,
        id: Option<Col>,
    }

    impl Transform for Probe {
        fn describe() -> Info {
            Info::new("probe", "0").config_key("only", "project to ID", false, None)
        }
        fn init(schema: &Schema, config: &Config) -> Result<Self, String> {
            if config.get("only").is_some() {
                schema.only_used_columns();
                return Ok(Probe {
                    cols: vec![],
                    fail: None,
                    id: Some(schema.require("id")?),
                });
            }
            Ok(Probe {
                cols: schema
                    .iter()
                    .map(|c| (c.col(), c.name().to_string()))
                    .collect(),
                fail: schema.column("fail"),
                id: schema.column("id"),
            })
        }
        fn transform(&mut self, row: &Row<'_>, out: &mut Out) -> Result<(), String> {
            let mut b = out.entity("Probe", row.row_number());
            for (c, name) in &self.cols {
                b = b.prop_or_null(name, row.get(*c));
            }
            b.prop("_id_i64", row.get_i64(self.id)).finish()?;
            if row.get_bool(self.fail) == Some(true) {
                return Err(format!("failing row {}", row.row_number()));
            }
            Ok(())
        }
    }

    fn schema() -> Vec<ColumnSchema> {
        vec![
            col("ID", ty::decimal(38, 0)),
            col("NAME", ty::text()),
            col("TAGS", ty::list(ty::text())),
            col("AT", ty::timestamp_ntz(TimeUnit::Millis)),
            col("FAIL", ty::boolean()),
        ]
    }

    #[test]
    fn values_round_trip_and_errors_roll_back() {
        let mut h = Harness::<Probe>::new(schema(), &[]).unwrap();
        assert_eq!(h.asked_columns(), None);
        h.file(
            "k/date=2024-01-01/x.parquet",
            &[("date", Some("2024-01-01"))],
        );
        let r = h.run(vec![
            vec![
                Val::dec(12, 0),
                "Ann".into(),
                Val::List(vec!["a".into(), Val::Null, "b\"".into()]),
                Val::Timestamp(5, TimeUnit::Millis),
                false.into(),
            ],
            vec![Val::Null, Val::Null, Val::Null, Val::Null, true.into()],
        ]);
        assert_eq!(r.errors, [(1, "failing row 1".to_string())]);
        assert_eq!(r.entities.len(), 1);
        let e = &r.entities[0];
        assert_eq!(e.external_id, "0");
        assert_eq!(e.prop("ID"), Some(&Val::dec(12, 0)));
        assert_eq!(e.prop("NAME"), Some(&Val::from("Ann")));
        assert_eq!(e.prop("TAGS"), Some(&Val::json(r#"["a",null,"b\""]"#)));
        assert_eq!(e.prop("AT"), Some(&Val::Timestamp(5, TimeUnit::Millis)));
        assert_eq!(e.prop("FAIL"), Some(&Val::Bool(false)));
        assert_eq!(e.prop("_id_i64"), Some(&Val::Int(12)));
        // Row numbers continue across batches of a file.
        let r = h.run(vec![vec![
            Val::Null,
            Val::Null,
            Val::List(vec![]),
            Val::Null,
            Val::Null,
        ]]);
        assert_eq!(r.entities[0].external_id, "2");
        assert_eq!(r.entities[0].prop("ID"), Some(&Val::Null));
        assert_eq!(r.entities[0].prop("TAGS"), Some(&Val::json("[]")));
        assert_eq!(r.entities[0].prop("_id_i64"), None);
    }

    #[test]
    fn projection_maps_handles() {
        let mut h = Harness::<Probe>::new(schema(), &[("only", "1")]).unwrap();
        assert_eq!(h.asked_columns(), Some(&[0u32][..]));
        let r = h.run(vec![vec![
            Val::dec(7, 0),
            "x".into(),
            Val::Null,
            Val::Null,
            true.into(),
        ]]);
        assert_eq!(r.entities[0].prop("_id_i64"), Some(&Val::Int(7)));
    }

    #[test]
    fn config_and_init_errors() {
        let e = Harness::<Probe>::new(schema(), &[("nope", "1")])
            .err()
            .unwrap();
        assert!(e.contains("unknown config key 'nope'"), "{e}");
        let e = Harness::<Probe>::new(vec![col("X", ty::text())], &[("only", "1")])
            .err()
            .unwrap();
        assert!(e.contains("required column id not found"), "{e}");
    }

    #[test]
    fn malformed_batches_become_row_errors() {
        let mut h = Harness::<Probe>::new(schema(), &[]).unwrap();
        let rows = vec![vec![Val::dec(1, 0), "a".into(), Val::Null, Val::Null, Val::Null]; 2];
        let mut b = build_batch(&schema(), &[0, 1, 2, 3, 4], &rows, h.file.clone(), 0);
        if let ColumnData::Scalar(Values::Text(t)) = &mut b.columns[1].data {
            t.offsets[2] = 99;
        }
        let r = h.run_batch(&b);
        assert!(r.entities.is_empty());
        assert_eq!(r.errors.len(), 2);
        assert!(r.errors[0].1.contains("column NAME"), "{:?}", r.errors);
        b.columns.pop();
        let r = h.run_batch(&b);
        assert!(
            r.errors[0].1.contains("4 columns, expected 5"),
            "{:?}",
            r.errors
        );
    }

    #[test]
    fn row_context() {
        struct Ctx;
        impl Transform for Ctx {
            fn describe() -> Info {
                Info::new("ctx", "0")
            }
            fn init(_: &Schema, _: &Config) -> Result<Self, String> {
                Ok(Ctx)
            }
            fn transform(&mut self, row: &Row<'_>, out: &mut Out) -> Result<(), String> {
                assert_eq!(row.partition("DATE"), Some(Some("2024-01-01")));
                assert_eq!(row.partition("region"), Some(None));
                assert_eq!(row.partition("x"), None);
                assert_eq!(row.partitions().len(), 2);
                out.entity("Ctx", row.file_key())
                    .prop("index", row.index())
                    .finish()
            }
        }
        let mut h = Harness::<Ctx>::new(vec![], &[]).unwrap();
        h.file(
            "a/b.parquet",
            &[("date", Some("2024-01-01")), ("region", None)],
        );
        let r = h.run(vec![vec![], vec![]]);
        assert_eq!(r.entities[1].external_id, "a/b.parquet");
        assert_eq!(r.entities[1].prop("index"), Some(&Val::Int(1)));
    }
}
