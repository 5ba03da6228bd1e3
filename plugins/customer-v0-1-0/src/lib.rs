//! Test fixture: the customer plugin (`plugins/customer-rust`) built for the old contract
//! `stagepush:transform@0.1.0` (`wit/since_v0.1.0/`), whose output is lists of records and
//! variants. The SDK builds for 0.2.0 now; this crate uses raw `wit-bindgen` bindings of
//! 0.1.0 so that the host's support for plugins built before 0.2.0 stays tested: it must
//! give the very records `customer-rust` gives (`tests/fixtures/customer-rust/expected.ndjson`).
//!
//! Same mapping as customer-rust: `CUSTOMER_ID` (required; decimal, integer or text) is the
//! external id; `NAME`, `COUNTRY` become `name`, `country`; `EMAIL` becomes `email`,
//! trimmed and lower-cased; `IS_ACTIVE` becomes `isActive`; `UPDATED_AT` is the entity
//! timestamp and `updatedAt`; `IS_DELETED` true makes a tombstone. Nulls are left out; a
//! null `CUSTOMER_ID` is a row error. Unlike the SDK it reads only the types the customer
//! tables have (text names, boolean flags, a timestamp or date `UPDATED_AT`); a column of
//! another type is left out.

mod bindings {
    wit_bindgen::generate!({ path: "../../wit/since_v0.1.0", world: "transformer" });
}

use std::cell::RefCell;

use bindings::exports::stagepush::transform::plugin::Guest;
use bindings::stagepush::transform::types::{
    Batch, Cell, Column, ColumnData, ColumnSchema, ColumnType, Entities, InitResult, Output,
    PluginInfo, RowError, ScalarType, Span, Timestamp, Values,
};

/// Positions of the columns the plugin reads, in the batch (it asks for these only).
#[derive(Clone, Copy)]
struct Columns {
    id: usize,
    name: Option<usize>,
    email: Option<usize>,
    country: Option<usize>,
    is_active: Option<usize>,
    updated_at: Option<usize>,
    is_deleted: Option<usize>,
}

/// `init`'s answer, kept for `transform`: the columns and the timestamp column's type.
struct State {
    columns: Columns,
    updated_at: Option<ScalarType>,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Entity type and property names, interned in this order.
const NAMES: [&str; 6] = [
    "Customer",
    "name",
    "country",
    "email",
    "isActive",
    "updatedAt",
];

struct CustomerV0_1;

impl Guest for CustomerV0_1 {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "customer".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Snowflake customer rows to CluedIn Customer entities".into(),
            config: Vec::new(),
        }
    }

    fn init(
        schema: Vec<ColumnSchema>,
        config: Vec<(String, String)>,
    ) -> Result<InitResult, String> {
        if let Some((key, _)) = config.first() {
            return Err(format!(
                "unknown config key '{key}': plugin customer takes no configuration"
            ));
        }
        let find = |name: &str| {
            schema
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
        };
        let id = find("CUSTOMER_ID").ok_or_else(|| {
            let names: Vec<&str> = schema.iter().map(|c| c.name.as_str()).collect();
            format!(
                "required column CUSTOMER_ID not found (columns: {})",
                names.join(", ")
            )
        })?;
        let wanted = [
            Some(id),
            find("NAME"),
            find("EMAIL"),
            find("COUNTRY"),
            find("IS_ACTIVE"),
            find("UPDATED_AT"),
            find("IS_DELETED"),
        ];
        // The host sends the asked columns in the order asked: position `k` of `asked`.
        let mut asked: Vec<u32> = Vec::new();
        let mut at = |c: Option<usize>| {
            c.map(|c| {
                asked.push(c as u32);
                asked.len() - 1
            })
        };
        let positions: Vec<Option<usize>> = wanted.iter().map(|&c| at(c)).collect();
        let columns = Columns {
            id: positions[0].unwrap_or_default(),
            name: positions[1],
            email: positions[2],
            country: positions[3],
            is_active: positions[4],
            updated_at: positions[5],
            is_deleted: positions[6],
        };
        let updated_at = wanted[5].and_then(|c| match &schema[c].type_ {
            ColumnType::Scalar(t) => Some(*t),
            ColumnType::List(_) => None,
        });
        STATE.with(|s| {
            *s.borrow_mut() = Some(State {
                columns,
                updated_at,
            })
        });
        Ok(InitResult {
            columns: Some(asked),
        })
    }

    fn transform(batch: Batch) -> Output {
        let mut out = Writer::new();
        STATE.with(|s| match s.borrow().as_ref() {
            Some(state) => {
                for row in 0..batch.row_count as usize {
                    if let Err(message) = out.row(state, &batch.columns, row) {
                        out.errors.push(RowError {
                            row: row as u32,
                            message,
                        });
                    }
                }
            }
            None => {
                for row in 0..batch.row_count {
                    out.errors.push(RowError {
                        row,
                        message: "transform called before a successful init".into(),
                    });
                }
            }
        });
        out.finish()
    }
}

bindings::export!(CustomerV0_1 with_types_in bindings);

/// One cell of the input, as this plugin reads it.
enum In<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Decimal(i128, i8),
    Text(&'a str),
    Date(i32),
    Timestamp(i64),
    Other,
}

fn is_null(column: &Column, row: usize) -> bool {
    column.nulls.get(row).is_some_and(|&n| n != 0)
}

fn cell<'a>(columns: &'a [Column], at: Option<usize>, row: usize) -> In<'a> {
    let Some(column) = at.and_then(|c| columns.get(c)) else {
        return In::Null;
    };
    if is_null(column, row) {
        return In::Null;
    }
    let text = |b: &'a bindings::stagepush::transform::types::ByteColumn| {
        let (start, end) = (b.offsets[row] as usize, b.offsets[row + 1] as usize);
        std::str::from_utf8(&b.data[start..end]).map_or(In::Other, In::Text)
    };
    match &column.data {
        ColumnData::Scalar(Values::Boolean(v)) => In::Bool(v[row] != 0),
        ColumnData::Scalar(Values::Integer(v)) => In::Int(v[row]),
        ColumnData::Scalar(Values::Decimal(v)) => {
            let d = v[row];
            In::Decimal((i128::from(d.hi) << 64) | i128::from(d.lo), d.scale)
        }
        ColumnData::Scalar(Values::Text(b)) => text(b),
        ColumnData::Scalar(Values::Date(v)) => In::Date(v[row]),
        ColumnData::Scalar(Values::Timestamp(v)) => In::Timestamp(v[row]),
        _ => In::Other,
    }
}

/// The exact text of `value × 10^-scale`.
fn decimal_text(value: i128, scale: i8) -> String {
    if scale <= 0 {
        let zeros = "0".repeat(scale.unsigned_abs() as usize);
        return if value == 0 {
            "0".into()
        } else {
            format!("{value}{zeros}")
        };
    }
    let digits = value.unsigned_abs().to_string();
    let scale = scale as usize;
    let digits = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = digits.split_at(digits.len() - scale);
    let sign = if value < 0 { "-" } else { "" };
    format!("{sign}{int}.{frac}")
}

/// The 0.1.0 output, built row by row.
struct Writer {
    e: Entities,
    errors: Vec<RowError>,
}

impl Writer {
    fn new() -> Writer {
        Writer {
            e: Entities {
                rows: Vec::new(),
                external_ids: Vec::new(),
                entity_types: Vec::new(),
                timestamps: Vec::new(),
                deleted: Vec::new(),
                prop_offsets: vec![0],
                prop_names: Vec::new(),
                prop_values: Vec::new(),
                names: NAMES.iter().map(|n| n.to_string()).collect(),
                bytes: Vec::new(),
            },
            errors: Vec::new(),
        }
    }

    fn bytes(&mut self, b: &[u8]) -> Span {
        let offset = self.e.bytes.len() as u32;
        self.e.bytes.extend_from_slice(b);
        Span {
            offset,
            len: b.len() as u32,
        }
    }

    fn prop(&mut self, name: u32, value: Cell) {
        self.e.prop_names.push(name);
        self.e.prop_values.push(value);
    }

    fn row(&mut self, state: &State, columns: &[Column], row: usize) -> Result<(), String> {
        let c = state.columns;
        let id = match cell(columns, Some(c.id), row) {
            In::Null => return Err("CUSTOMER_ID is null".into()),
            In::Text(s) => s.to_string(),
            In::Int(i) => i.to_string(),
            In::Decimal(v, scale) => decimal_text(v, scale),
            _ => return Err("CUSTOMER_ID is neither a number nor text".into()),
        };
        if id.is_empty() {
            return Err("external id is empty".into());
        }
        let updated_at = match (cell(columns, c.updated_at, row), state.updated_at) {
            (In::Timestamp(value), Some(ScalarType::Timestamp(t))) => Cell::Timestamp(Timestamp {
                value,
                unit: t.unit,
            }),
            (In::Date(d), _) => Cell::Date(d),
            (In::Null, _) => Cell::Null,
            _ => return Err("entity timestamp must be a date or a timestamp".into()),
        };
        let deleted = matches!(cell(columns, c.is_deleted, row), In::Bool(true));
        let span = self.bytes(id.as_bytes());
        self.e.rows.push(row as u32);
        self.e.external_ids.push(span);
        self.e.entity_types.push(0);
        self.e.timestamps.push(updated_at);
        self.e.deleted.push(u8::from(deleted));
        if !deleted {
            for (name, at) in [(1, c.name), (2, c.country)] {
                if let In::Text(s) = cell(columns, at, row) {
                    let span = self.bytes(s.as_bytes());
                    self.prop(name, Cell::Text(span));
                }
            }
            if let In::Text(s) = cell(columns, c.email, row) {
                let span = self.bytes(s.trim().to_lowercase().as_bytes());
                self.prop(3, Cell::Text(span));
            }
            if let In::Bool(b) = cell(columns, c.is_active, row) {
                self.prop(4, Cell::Boolean(b));
            }
            if !matches!(updated_at, Cell::Null) {
                self.prop(5, updated_at);
            }
        }
        self.e.prop_offsets.push(self.e.prop_names.len() as u32);
        Ok(())
    }

    fn finish(self) -> Output {
        Output {
            entities: self.e,
            errors: self.errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decimal_text;

    #[test]
    fn decimals_are_written_exactly() {
        assert_eq!(decimal_text(42, 0), "42");
        assert_eq!(decimal_text(-7, 0), "-7");
        assert_eq!(decimal_text(10i128.pow(38) - 1, 0), "9".repeat(38));
        assert_eq!(decimal_text(-1230, 2), "-12.30");
        assert_eq!(decimal_text(5, 3), "0.005");
        assert_eq!(decimal_text(12, -2), "1200");
        assert_eq!(decimal_text(0, -2), "0");
    }
}
