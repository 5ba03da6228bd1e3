//! Row views over a columnar batch: [`Row`].

use crate::bindings::stagepush::transform::types::{
    Batch, ByteColumn, ColumnData, ColumnType, Decimal as WitDecimal, ScalarType, SourceFile,
    Values,
};
use crate::schema::{Col, Schema};
use crate::value::{Date, Decimal, List, TimeUnit, Timestamp, Value};

/// The values of one column (or of a list column's items), borrowed from the batch.
pub(crate) enum Data<'a> {
    Bool(&'a [u8]),
    Int(&'a [i64]),
    Float(&'a [f64]),
    Decimal(&'a [WitDecimal]),
    Text(Bytes<'a>),
    Json(Bytes<'a>),
    Date(&'a [i32]),
    Timestamp(&'a [i64], TimeUnit, bool),
    Binary(Bytes<'a>),
}

/// A variable-length column whose offsets were checked (monotonic, within `data`).
pub(crate) struct Bytes<'a> {
    data: &'a [u8],
    /// `data` as text when all of it is valid UTF-8 (checked once per batch, so getting a
    /// value only checks that its ends are on character boundaries).
    text: Option<&'a str>,
    offsets: &'a [u32],
}

impl<'a> Bytes<'a> {
    fn new(c: &'a ByteColumn, is_text: bool) -> Result<Bytes<'a>, String> {
        check_offsets(&c.offsets, c.data.len(), "offsets")?;
        if c.offsets.is_empty() {
            return Err("offsets: empty (need one more entry than values)".into());
        }
        Ok(Bytes {
            data: &c.data,
            text: if is_text {
                core::str::from_utf8(&c.data).ok()
            } else {
                None
            },
            offsets: &c.offsets,
        })
    }

    #[inline]
    fn range(&self, i: usize) -> (usize, usize) {
        (self.offsets[i] as usize, self.offsets[i + 1] as usize)
    }

    #[inline]
    fn bytes(&self, i: usize) -> &'a [u8] {
        let (s, e) = self.range(i);
        &self.data[s..e]
    }

    /// Text of value `i`; `None` when it is not valid UTF-8.
    #[inline]
    fn str(&self, i: usize) -> Option<&'a str> {
        let (s, e) = self.range(i);
        match self.text {
            Some(t) => t.get(s..e),
            None => core::str::from_utf8(&self.data[s..e]).ok(),
        }
    }
}

fn check_offsets(offsets: &[u32], data_len: usize, what: &str) -> Result<(), String> {
    let mut prev = 0u32;
    for (i, &o) in offsets.iter().enumerate() {
        if i > 0 && o < prev {
            return Err(format!(
                "{what}: offset {i} ({o}) is before the previous one ({prev})"
            ));
        }
        prev = o;
    }
    if prev as usize > data_len {
        return Err(format!(
            "{what}: last offset {prev} is past the end ({data_len})"
        ));
    }
    Ok(())
}

impl<'a> Data<'a> {
    fn new(ty: ScalarType, values: &'a Values) -> Result<Data<'a>, String> {
        Ok(match (ty, values) {
            (ScalarType::Boolean, Values::Boolean(v)) => Data::Bool(v),
            (ScalarType::Integer, Values::Integer(v)) => Data::Int(v),
            (ScalarType::Float, Values::Float(v)) => Data::Float(v),
            (ScalarType::Decimal(_), Values::Decimal(v)) => Data::Decimal(v),
            (ScalarType::Text, Values::Text(c)) => Data::Text(Bytes::new(c, true)?),
            (ScalarType::Json, Values::Json(c)) => Data::Json(Bytes::new(c, true)?),
            (ScalarType::Date, Values::Date(v)) => Data::Date(v),
            (ScalarType::Timestamp(t), Values::Timestamp(v)) => {
                Data::Timestamp(v, t.unit, t.wall_clock)
            }
            (ScalarType::Binary, Values::Binary(c)) => Data::Binary(Bytes::new(c, false)?),
            (ty, v) => {
                return Err(format!(
                    "the schema says {ty}, the batch holds {} values",
                    values_kind(v)
                ));
            }
        })
    }

    /// Number of values.
    fn len(&self) -> usize {
        match self {
            Data::Bool(v) => v.len(),
            Data::Int(v) | Data::Timestamp(v, ..) => v.len(),
            Data::Float(v) => v.len(),
            Data::Decimal(v) => v.len(),
            Data::Text(b) | Data::Json(b) | Data::Binary(b) => b.offsets.len() - 1,
            Data::Date(v) => v.len(),
        }
    }

    /// Value `i` (`i < len()`). Text that is not valid UTF-8 comes back as `Binary`.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Value<'a> {
        match self {
            Data::Bool(v) => Value::Bool(v[i] != 0),
            Data::Int(v) => Value::Int(v[i]),
            Data::Float(v) => Value::Float(v[i]),
            Data::Decimal(v) => {
                let d = v[i];
                Value::Decimal(Decimal::new(
                    (i128::from(d.hi) << 64) | i128::from(d.lo),
                    d.scale,
                ))
            }
            Data::Text(b) => match b.str(i) {
                Some(s) => Value::Text(s),
                None => Value::Binary(b.bytes(i)),
            },
            Data::Json(b) => match b.str(i) {
                Some(s) => Value::Json(s),
                None => Value::Binary(b.bytes(i)),
            },
            Data::Date(v) => Value::Date(Date(v[i])),
            Data::Timestamp(v, unit, wall_clock) => Value::Timestamp(Timestamp {
                value: v[i],
                unit: *unit,
                wall_clock: *wall_clock,
            }),
            Data::Binary(b) => Value::Binary(b.bytes(i)),
        }
    }
}

fn values_kind(v: &Values) -> &'static str {
    match v {
        Values::Boolean(_) => "boolean",
        Values::Integer(_) => "integer",
        Values::Float(_) => "float",
        Values::Decimal(_) => "decimal",
        Values::Text(_) => "text",
        Values::Json(_) => "json",
        Values::Date(_) => "date",
        Values::Timestamp(_) => "timestamp",
        Values::Binary(_) => "binary",
    }
}

enum Kind<'a> {
    Scalar(Data<'a>),
    List {
        offsets: &'a [u32],
        item_nulls: &'a [u8],
        items: Data<'a>,
    },
}

struct ColView<'a> {
    /// Empty, or one byte per row.
    nulls: &'a [u8],
    kind: Kind<'a>,
}

/// A checked, borrowed view of a batch: everything a [`Row`] reads.
pub(crate) struct BatchView<'a> {
    schema: &'a Schema,
    file: &'a SourceFile,
    first_row: u64,
    row_count: u32,
    /// Indexed by schema column (`None`: not sent).
    cols: Vec<Option<ColView<'a>>>,
}

impl<'a> BatchView<'a> {
    /// Checks `batch` against the schema and the columns the plugin asked for (`sent[k]` is
    /// the schema index of the batch's column `k`). A malformed batch is an error, so row
    /// access can index without failing.
    pub(crate) fn new(
        schema: &'a Schema,
        sent: &[u32],
        batch: &'a Batch,
    ) -> Result<BatchView<'a>, String> {
        let n = batch.row_count as usize;
        if batch.columns.len() != sent.len() {
            return Err(format!(
                "{} columns, expected {}",
                batch.columns.len(),
                sent.len()
            ));
        }
        let mut cols: Vec<Option<ColView<'a>>> = Vec::with_capacity(schema.len());
        cols.resize_with(schema.len(), || None);
        for (column, &si) in batch.columns.iter().zip(sent) {
            let def = schema
                .raw()
                .get(si as usize)
                .ok_or("column index out of range")?;
            let view = Self::column(def.type_, column, n)
                .map_err(|e| format!("column {}: {e}", def.name))?;
            cols[si as usize] = Some(view);
        }
        Ok(BatchView {
            schema,
            file: &batch.file,
            first_row: batch.first_row,
            row_count: batch.row_count,
            cols,
        })
    }

    fn column(
        ty: ColumnType,
        column: &'a crate::bindings::stagepush::transform::types::Column,
        n: usize,
    ) -> Result<ColView<'a>, String> {
        if !column.nulls.is_empty() && column.nulls.len() != n {
            return Err(format!("{} null flags for {n} rows", column.nulls.len()));
        }
        let kind = match (ty, &column.data) {
            (ColumnType::Scalar(t), ColumnData::Scalar(v)) => {
                let data = Data::new(t, v)?;
                if data.len() != n {
                    return Err(format!("{} values for {n} rows", data.len()));
                }
                Kind::Scalar(data)
            }
            (ColumnType::List(t), ColumnData::List(l)) => {
                let items = Data::new(t, &l.items).map_err(|e| format!("items: {e}"))?;
                if l.offsets.len() != n + 1 {
                    return Err(format!("{} list offsets for {n} rows", l.offsets.len()));
                }
                check_offsets(&l.offsets, items.len(), "list offsets")?;
                if !l.item_nulls.is_empty() && l.item_nulls.len() != items.len() {
                    return Err(format!(
                        "{} item null flags for {} items",
                        l.item_nulls.len(),
                        items.len()
                    ));
                }
                Kind::List {
                    offsets: &l.offsets,
                    item_nulls: &l.item_nulls,
                    items,
                }
            }
            (ty, _) => return Err(format!("the schema says {ty}, the batch disagrees")),
        };
        Ok(ColView {
            nulls: &column.nulls,
            kind,
        })
    }

    pub(crate) fn row_count(&self) -> u32 {
        self.row_count
    }

    pub(crate) fn row(&'a self, index: u32) -> Row<'a> {
        Row { view: self, index }
    }
}

/// One input row: typed access to its cells and to where it comes from.
///
/// Values borrow from the batch; nothing is copied or allocated. Getting a column the plugin
/// did not find (an `Option<Col>` that is `None`) gives [`Value::Null`], so optional columns
/// need no special casing.
#[derive(Clone, Copy)]
pub struct Row<'a> {
    view: &'a BatchView<'a>,
    index: u32,
}

impl<'a> Row<'a> {
    /// The cell of `col`; `Null` for a null cell or a `None` column.
    #[inline]
    pub fn get(&self, col: impl Into<Option<Col>>) -> Value<'a> {
        let Some(col) = col.into() else {
            return Value::Null;
        };
        let Some(Some(c)) = self.view.cols.get(col.index()) else {
            return Value::Null;
        };
        let i = self.index as usize;
        if !c.nulls.is_empty() && c.nulls[i] != 0 {
            return Value::Null;
        }
        match &c.kind {
            Kind::Scalar(d) => d.get(i),
            Kind::List {
                offsets,
                item_nulls,
                items,
            } => Value::List(List {
                items,
                item_nulls,
                start: offsets[i] as usize,
                end: offsets[i + 1] as usize,
            }),
        }
    }

    /// True when the cell is null (or the column is `None`).
    #[inline]
    pub fn is_null(&self, col: impl Into<Option<Col>>) -> bool {
        self.get(col).is_null()
    }

    /// The cell of `col`, or the error `"<COLUMN> is null"`: `row.require(self.id)?`.
    #[inline]
    pub fn require(&self, col: Col) -> Result<Value<'a>, String> {
        match self.get(col) {
            Value::Null => Err(format!("{} is null", self.view.schema.name(col))),
            v => Ok(v),
        }
    }

    /// Text or JSON text ([`Value::as_str`]).
    #[inline]
    pub fn get_str(&self, col: impl Into<Option<Col>>) -> Option<&'a str> {
        self.get(col).as_str()
    }

    /// A boolean ([`Value::as_bool`]).
    #[inline]
    pub fn get_bool(&self, col: impl Into<Option<Col>>) -> Option<bool> {
        self.get(col).as_bool()
    }

    /// An integer, also from a whole decimal or integer text ([`Value::as_i64`]).
    #[inline]
    pub fn get_i64(&self, col: impl Into<Option<Col>>) -> Option<i64> {
        self.get(col).as_i64()
    }

    /// A float ([`Value::as_f64`]).
    #[inline]
    pub fn get_f64(&self, col: impl Into<Option<Col>>) -> Option<f64> {
        self.get(col).as_f64()
    }

    /// A timestamp, or a date as midnight ([`Value::as_timestamp`]).
    #[inline]
    pub fn get_timestamp(&self, col: impl Into<Option<Col>>) -> Option<Timestamp> {
        self.get(col).as_timestamp()
    }

    /// Index of this row in its batch.
    #[inline]
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Row number within the file (0-based): the batch's first row plus [`index`](Self::index).
    #[inline]
    pub fn row_number(&self) -> u64 {
        self.view.first_row + u64::from(self.index)
    }

    /// The object key or path of the file this row comes from.
    #[inline]
    pub fn file_key(&self) -> &'a str {
        &self.view.file.key
    }

    /// The `key=value` partition folders of the file's path, in path order; a `_NULL_`
    /// partition has no value.
    pub fn partitions(&self) -> impl ExactSizeIterator<Item = (&'a str, Option<&'a str>)> + 'a {
        self.view
            .file
            .partitions
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
    }

    /// The partition `name` (case-insensitive): `None` when the path has no such folder,
    /// `Some(None)` for a NULL partition.
    pub fn partition(&self, name: &str) -> Option<Option<&'a str>> {
        let p = &self.view.file.partitions;
        p.iter()
            .find(|(k, _)| k == name)
            .or_else(|| p.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .map(|(_, v)| v.as_deref())
    }

    /// The input columns.
    #[inline]
    pub fn schema(&self) -> &'a Schema {
        self.view.schema
    }
}
