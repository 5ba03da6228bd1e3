//! Contract 0.2.0 (`wit/since_v0.2.0/`): the output packed into byte columns.
//!
//! Its bindings are in `crate::bindings::since_v0_2_0` (0.1.0's input types reused); this
//! file owns what the host does for this version alone: its imports (`host.log` under
//! 0.2.0's name, the function-less `output` interface) and the output adapter, [`unpack`],
//! which turns a packed output into the host's output type (0.1.0's), and its linking.

use wasmtime::component::{Component, HasSelf, Linker};

use super::LinkError;
use crate::bindings::host;
use crate::bindings::packed;
use crate::bindings::since_v0_2_0::stagepush::transform::host as v0_2_host;
use crate::bindings::since_v0_2_0::{Transformer, TransformerPre};
use crate::bindings::types::{Cell, Entities, Output, Span, TimeUnit, Timestamp};
use crate::plugin::output::OutputError;
use crate::plugin::sandbox::State;

/// The output interface has no functions.
impl packed::Host for State {}

/// 0.2.0's `host` interface is 0.1.0's under a new version.
impl v0_2_host::Host for State {
    fn log(&mut self, level: v0_2_host::Level, message: String) {
        use v0_2_host::Level as L;
        let level = match level {
            L::Trace => host::Level::Trace,
            L::Debug => host::Level::Debug,
            L::Info => host::Level::Info,
            L::Warn => host::Level::Warn,
            L::Error => host::Level::Error,
        };
        host::Host::log(self, level, message)
    }
}

/// Adds 0.2.0's imports to `linker` and links `component` against them.
pub(super) fn link(
    linker: &mut Linker<State>,
    component: &Component,
) -> Result<TransformerPre<State>, LinkError> {
    Transformer::add_to_linker::<State, HasSelf<State>>(linker, |state| state)
        .map_err(LinkError::Engine)?;
    let instance_pre = linker
        .instantiate_pre(component)
        .map_err(LinkError::Imports)?;
    TransformerPre::new(instance_pre).map_err(LinkError::Imports)
}

/// Cell kinds of contract 0.2.0 (`output.cells`).
mod kind {
    pub const NULL: u8 = 0;
    pub const BOOLEAN: u8 = 1;
    pub const INTEGER: u8 = 2;
    pub const FLOAT: u8 = 3;
    pub const DECIMAL: u8 = 4;
    pub const TEXT: u8 = 5;
    pub const JSON: u8 = 6;
    pub const DATE: u8 = 7;
    pub const SECONDS: u8 = 8;
    pub const MILLIS: u8 = 9;
    pub const MICROS: u8 = 10;
    pub const NANOS: u8 = 11;
    pub const BINARY: u8 = 12;
}

/// Turns a 0.2.0 packed output into the host's output type, checking every column's
/// length and every cell's kind; [`validate`] checks the rest (indices, spans, order).
pub fn unpack(output: packed::BatchOutput) -> Result<Output, OutputError> {
    let packed::BatchOutput {
        entities: e,
        errors,
    } = output;
    let n = e.count as usize;
    let rows = u32s("rows", &e.rows, n)?;
    let entity_types = u32s("entity-types", &e.entity_types, n)?;
    if e.deleted.len() != n {
        return Err(OutputError::DeletedLength {
            len: e.deleted.len(),
            entities: n,
        });
    }
    let ids = u32s("external-ids", &e.external_ids, 2 * n)?;
    let external_ids = ids
        .chunks_exact(2)
        .map(|pair| Span {
            offset: pair[0],
            len: pair[1],
        })
        .collect();
    let timestamps = cells("timestamps", &e.timestamps)?;
    if timestamps.len() != n {
        return Err(OutputError::TimestampCount {
            cells: timestamps.len(),
            entities: n,
        });
    }
    let prop_offsets = u32s("prop-offsets", &e.prop_offsets, n + 1)?;
    let prop_values = cells("prop-values", &e.prop_values)?;
    let prop_names = u32s("prop-names", &e.prop_names, prop_values.len())?;
    Ok(Output {
        entities: Entities {
            rows,
            external_ids,
            entity_types,
            timestamps,
            deleted: e.deleted,
            prop_offsets,
            prop_names,
            prop_values,
            names: e.names,
            bytes: e.bytes,
        },
        errors,
    })
}

/// `count` little-endian u32 values from `bytes`.
fn u32s(column: &'static str, bytes: &[u8], count: usize) -> Result<Vec<u32>, OutputError> {
    if bytes.len() != count * 4 {
        return Err(OutputError::PackedLength {
            column,
            len: bytes.len(),
            count,
        });
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn cells(column: &'static str, cells: &packed::Cells) -> Result<Vec<Cell>, OutputError> {
    let count = cells.kinds.len();
    if cells.words.len() != count * 8 {
        return Err(OutputError::CellWords {
            column,
            len: cells.words.len(),
            kinds: count,
        });
    }
    // A plain loop into a presized vector: this runs for every property of every entity,
    // and an iterator collecting `Result`s compiles to a slower loop here.
    let mut out = Vec::with_capacity(count);
    for (i, (&k, w)) in cells
        .kinds
        .iter()
        .zip(cells.words.chunks_exact(8))
        .enumerate()
    {
        let word = i64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        let span = Span {
            offset: word as u32,
            len: (word as u64 >> 32) as u32,
        };
        let timestamp = |unit| Cell::Timestamp(Timestamp { value: word, unit });
        out.push(match k {
            kind::TEXT => Cell::Text(span),
            kind::NULL => Cell::Null,
            kind::BOOLEAN => Cell::Boolean(word != 0),
            kind::INTEGER => Cell::Integer(word),
            kind::FLOAT => Cell::Float(f64::from_bits(word as u64)),
            kind::DECIMAL => {
                let d = usize::try_from(word)
                    .ok()
                    .and_then(|d| cells.decimals.get(d))
                    .ok_or(OutputError::DecimalIndex {
                        column,
                        cell: i,
                        word,
                        decimals: cells.decimals.len(),
                    })?;
                Cell::Decimal(*d)
            }
            kind::JSON => Cell::Json(span),
            kind::DATE => Cell::Date(i32::try_from(word).map_err(|_| OutputError::DateRange {
                column,
                cell: i,
                word,
            })?),
            kind::SECONDS => timestamp(TimeUnit::Seconds),
            kind::MILLIS => timestamp(TimeUnit::Millis),
            kind::MICROS => timestamp(TimeUnit::Micros),
            kind::NANOS => timestamp(TimeUnit::Nanos),
            kind::BINARY => Cell::Binary(span),
            other => {
                return Err(OutputError::UnknownKind {
                    column,
                    cell: i,
                    kind: other,
                });
            }
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::types::{Decimal, RowError};
    use crate::plugin::output::validate;

    fn le32(values: &[u32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn cells(cells: &[(u8, i64)], decimals: Vec<Decimal>) -> packed::Cells {
        packed::Cells {
            kinds: cells.iter().map(|c| c.0).collect(),
            words: cells.iter().flat_map(|c| c.1.to_le_bytes()).collect(),
            decimals,
        }
    }

    /// Two entities of a 3-row batch: row 0 with every kind of property, row 2 a
    /// tombstone; row 1 rejected.
    fn packed_output() -> packed::BatchOutput {
        let bytes = b"Ann{\"a\":1}\x00\x0142".to_vec();
        let span = |offset: i64, len: i64| offset | (len << 32);
        packed::BatchOutput {
            entities: packed::Entities {
                count: 2,
                rows: le32(&[0, 2]),
                entity_types: le32(&[0, 0]),
                deleted: vec![0, 1],
                external_ids: le32(&[12, 1, 13, 1]),
                timestamps: cells(
                    &[(kind::MILLIS, 1_714_566_896_789), (kind::DATE, -1)],
                    vec![],
                ),
                prop_offsets: le32(&[0, 12, 12]),
                prop_names: le32(&[1; 12]),
                prop_values: cells(
                    &[
                        (kind::NULL, 0),
                        (kind::BOOLEAN, 1),
                        (kind::INTEGER, -7),
                        (kind::FLOAT, 1.5f64.to_bits() as i64),
                        (kind::DECIMAL, 0),
                        (kind::TEXT, span(0, 3)),
                        (kind::JSON, span(3, 7)),
                        (kind::DATE, 19_844),
                        (kind::SECONDS, -1),
                        (kind::MICROS, 2),
                        (kind::NANOS, 3),
                        (kind::BINARY, span(10, 2)),
                    ],
                    vec![Decimal {
                        lo: (-1230i64) as u64,
                        hi: -1,
                        scale: 2,
                    }],
                ),
                names: vec!["Customer".into(), "p".into()],
                bytes,
            },
            errors: vec![RowError {
                row: 1,
                message: "ID is null".into(),
            }],
        }
    }

    #[test]
    fn unpack_gives_every_cell_kind_its_0_1_0_cell() {
        let output = unpack(packed_output()).expect("well-formed");
        validate(&output, 3).expect("valid after unpacking");
        let e = &output.entities;
        assert_eq!(e.rows, [0, 2]);
        assert_eq!(e.deleted, [0, 1]);
        assert_eq!(
            e.external_ids,
            [Span { offset: 12, len: 1 }, Span { offset: 13, len: 1 }]
        );
        assert_eq!(
            e.timestamps,
            [
                Cell::Timestamp(Timestamp {
                    value: 1_714_566_896_789,
                    unit: TimeUnit::Millis
                }),
                Cell::Date(-1)
            ]
        );
        assert_eq!(e.prop_offsets, [0, 12, 12]);
        assert_eq!(
            e.prop_values,
            [
                Cell::Null,
                Cell::Boolean(true),
                Cell::Integer(-7),
                Cell::Float(1.5),
                Cell::Decimal(Decimal {
                    lo: (-1230i64) as u64,
                    hi: -1,
                    scale: 2
                }),
                Cell::Text(Span { offset: 0, len: 3 }),
                Cell::Json(Span { offset: 3, len: 7 }),
                Cell::Date(19_844),
                Cell::Timestamp(Timestamp {
                    value: -1,
                    unit: TimeUnit::Seconds
                }),
                Cell::Timestamp(Timestamp {
                    value: 2,
                    unit: TimeUnit::Micros
                }),
                Cell::Timestamp(Timestamp {
                    value: 3,
                    unit: TimeUnit::Nanos
                }),
                Cell::Binary(Span { offset: 10, len: 2 }),
            ]
        );
        assert_eq!(output.errors[0].row, 1);
    }

    #[test]
    fn unpack_names_the_malformed_column() {
        type Break = fn(&mut packed::Entities);
        let cases: [(Break, &str); 8] = [
            (
                |e| e.rows.truncate(7),
                "rows has 7 bytes, expected 8 (2 u32 values)",
            ),
            (
                |e| e.deleted.push(0),
                "deleted has 3 bytes for 2 entities (expected 1 per entity)",
            ),
            (
                |e| e.external_ids.truncate(8),
                "external-ids has 8 bytes, expected 16 (4 u32 values)",
            ),
            (
                |e| e.prop_offsets.truncate(8),
                "prop-offsets has 8 bytes, expected 12 (3 u32 values)",
            ),
            (
                |e| e.prop_values.words.truncate(8),
                "prop-values: 8 bytes of words for 12 kinds (expected 8 per cell)",
            ),
            (
                |e| e.prop_values.kinds[3] = 13,
                "prop-values: cell 3 has unknown kind 13",
            ),
            (
                |e| e.prop_values.decimals.clear(),
                "prop-values: cell 4 names decimal 0, there are 0",
            ),
            (
                |e| {
                    e.timestamps.kinds.pop();
                    e.timestamps.words.truncate(8);
                },
                "timestamps has 1 cells for 2 entities",
            ),
        ];
        for (break_it, expected) in cases {
            let mut output = packed_output();
            break_it(&mut output.entities);
            assert_eq!(unpack(output).unwrap_err().to_string(), expected);
        }
    }

    #[test]
    fn unpacked_spans_and_names_are_still_validated() {
        let mut output = packed_output();
        output.entities.external_ids = le32(&[12, 1, 13, 9]);
        let unpacked = unpack(output).expect("the lengths are right");
        assert_eq!(
            validate(&unpacked, 3).unwrap_err().to_string(),
            "span 13+9 is outside the 14-byte buffer"
        );
        let mut output = packed_output();
        output.entities.entity_types = le32(&[0, 5]);
        let unpacked = unpack(output).expect("the lengths are right");
        assert_eq!(
            validate(&unpacked, 3).unwrap_err().to_string(),
            "name index 5 is outside the 2 interned names"
        );
    }
}
