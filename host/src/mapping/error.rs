//! [`MappingError`]: why a mapping (or the pass-through) cannot be used with a stage's
//! schema. Every one is found before any row is read and names what to change.

/// A mapping that cannot run against the stage's schema, or a `[mapping]` that does not
/// parse. Row-level problems (a null id, text that is not JSON) are not errors of this
/// kind: they are row errors, dead-lettered like a plugin's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// An expression does not parse.
    #[error("[mapping] {field} = \"{expr}\": {message}")]
    Syntax {
        field: String,
        expr: String,
        message: String,
    },
    /// A column the mapping names is not in the stage.
    #[error("[mapping] {field}: no column {column} in the stage (columns: {existing})")]
    UnknownColumn {
        field: String,
        column: String,
        existing: String,
    },
    /// A function that does not exist.
    #[error("[mapping] {field}: unknown function {name}() (functions: {known})")]
    UnknownFunction {
        field: String,
        name: String,
        known: &'static str,
    },
    /// A function called with the wrong number of arguments.
    #[error("[mapping] {field}: {name}() takes {expected}, not {got}")]
    Arity {
        field: String,
        name: String,
        expected: &'static str,
        got: usize,
    },
    /// A value of the wrong type for where it is used (e.g. a JSON path on a number).
    #[error("[mapping] {field}: {message}")]
    Type { field: String, message: String },
    /// The `[mapping]` section is incomplete or contradicts itself.
    #[error("[mapping] {0}")]
    Invalid(String),
    /// No plugin, no `[mapping]`, and the stage is not shaped for the pass-through.
    #[error(
        "no plugin and no [mapping], and the stage is not shaped for the pass-through: it lacks {missing} (columns: {existing}). Set --plugin or [plugin] path, write a [mapping] (docs/mapping.md), or unload the columns EXTERNALID, TYPE, TIMESTAMP, PROPERTIES (an OBJECT) and optionally DELETED"
    )]
    NotPassThrough { missing: String, existing: String },
}

/// Why a piece of a mapping's text does not parse: an expression or a JSON path (the
/// message [`MappingError::Syntax`] and [`MappingError::Type`] carry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SyntaxError(pub String);

impl From<String> for SyntaxError {
    fn from(message: String) -> Self {
        SyntaxError(message)
    }
}

impl From<&str> for SyntaxError {
    fn from(message: &str) -> Self {
        SyntaxError(message.to_string())
    }
}

/// Why one row cannot be mapped: the message of its row error, dead-lettered like a
/// plugin's row error (stage `plugin`, kind `rejected`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnmappableRow(pub String);

impl From<String> for UnmappableRow {
    fn from(message: String) -> Self {
        UnmappableRow(message)
    }
}
