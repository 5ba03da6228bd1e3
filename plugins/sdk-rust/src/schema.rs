//! The input columns ([`Schema`]), column handles ([`Col`]), the plugin's self-description
//! ([`Info`]) and its configuration ([`Config`]).

use core::cell::{Cell, RefCell};
use core::fmt;
use core::str::FromStr;

pub use crate::bindings::stagepush::transform::types::{
    ColumnSchema, ColumnType, ScalarType, TimestampType,
};
use crate::bindings::stagepush::transform::types::{ConfigKey, PluginInfo};

/// A handle to an input column, from [`Schema::column`] / [`Schema::require`]. Cheap to copy;
/// keep it in the plugin struct and pass it to [`Row::get`](crate::Row::get).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Col(pub(crate) u32);

impl Col {
    /// The column's index in the schema.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The columns of the stage's files, as passed to [`Transform::init`](crate::Transform::init).
///
/// Name lookups are case-insensitive (an exact match wins when names differ only in case).
/// Every handle the plugin obtains marks its column as *used*; after
/// [`only_used_columns`](Schema::only_used_columns) the host sends only those columns.
pub struct Schema {
    columns: Vec<ColumnSchema>,
    used: RefCell<Vec<u32>>,
    only_used: Cell<bool>,
}

impl Schema {
    /// A schema of these columns.
    pub fn new(columns: Vec<ColumnSchema>) -> Schema {
        Schema {
            columns,
            used: RefCell::new(Vec::new()),
            only_used: Cell::new(false),
        }
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// True when there are no columns.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The column named `name` (case-insensitive), if any. When there is none but a column
    /// with a similar name (a misspelling: `CUSTOMERID` for `CUSTOMER_ID`), logs a warning
    /// naming them (the host reports it once per run).
    pub fn column(&self, name: &str) -> Option<Col> {
        let found = self.find(name).map(|i| self.mark(i));
        if found.is_none() {
            let close = self.similar(name);
            if !close.is_empty() {
                crate::log(
                    crate::Level::Warn,
                    &format!("no column {name} (did you mean {}?)", close.join(", ")),
                );
            }
        }
        found
    }

    /// Up to 3 column names like `name`: equal but for case, `_`, `-` and spaces, or at
    /// most 2 edits apart (names of 4 characters or more).
    pub fn similar(&self, name: &str) -> Vec<&str> {
        let squash = |s: &str| -> Vec<char> {
            s.chars()
                .filter(|c| !matches!(c, '_' | '-' | ' '))
                .flat_map(char::to_uppercase)
                .collect()
        };
        let wanted = squash(name);
        self.columns
            .iter()
            .map(|c| c.name.as_str())
            .filter(|other| {
                let have = squash(other);
                have == wanted || (wanted.len() >= 4 && edit_distance(&have, &wanted) <= 2)
            })
            .take(3)
            .collect()
    }

    /// The column named `name` (case-insensitive), or an error naming it and listing the
    /// columns there are: return it from `init` with `?`.
    pub fn require(&self, name: &str) -> Result<Col, String> {
        self.find(name).map(|i| self.mark(i)).ok_or_else(|| {
            let names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
            format!(
                "required column {name} not found (columns: {})",
                names.join(", ")
            )
        })
    }

    /// The column at `index` in the schema.
    pub fn col_at(&self, index: usize) -> Option<Col> {
        (index < self.columns.len()).then(|| self.mark(index))
    }

    /// The columns, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = ColumnDef<'_>> + '_ {
        (0..self.columns.len()).map(|i| ColumnDef {
            schema: self,
            index: i,
        })
    }

    /// Name, type and nullability of a column.
    pub fn def(&self, col: Col) -> ColumnDef<'_> {
        ColumnDef {
            schema: self,
            index: col.index(),
        }
    }

    /// The name of a column.
    pub fn name(&self, col: Col) -> &str {
        self.columns
            .get(col.index())
            .map_or("", |c| c.name.as_str())
    }

    /// Asks the host to send only the columns this plugin took a handle to (through any
    /// method of this schema, before or after this call, during `init`), in the order it first
    /// took them. Narrow files cost nothing to send whole; wide ones (or ones with big columns
    /// the plugin ignores) are cheaper this way. [`Col`] handles keep working unchanged.
    pub fn only_used_columns(&self) {
        self.only_used.set(true);
    }

    /// The columns as the host described them.
    pub fn raw(&self) -> &[ColumnSchema] {
        &self.columns
    }

    fn find(&self, name: &str) -> Option<usize> {
        let cols = &self.columns;
        cols.iter()
            .position(|c| c.name == name)
            .or_else(|| cols.iter().position(|c| c.name.eq_ignore_ascii_case(name)))
            .or_else(|| {
                let lower = name.to_lowercase();
                cols.iter().position(|c| c.name.to_lowercase() == lower)
            })
    }

    fn mark(&self, index: usize) -> Col {
        let i = index as u32;
        let mut used = self.used.borrow_mut();
        if !used.contains(&i) {
            used.push(i);
        }
        Col(i)
    }

    /// The columns to ask the host for: `None` (all) unless `only_used_columns` was called.
    pub(crate) fn projection(&self) -> Option<Vec<u32>> {
        self.only_used.get().then(|| self.used.borrow().clone())
    }
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// One column of a [`Schema`].
#[derive(Clone, Copy)]
pub struct ColumnDef<'s> {
    schema: &'s Schema,
    index: usize,
}

impl<'s> ColumnDef<'s> {
    fn raw(&self) -> &'s ColumnSchema {
        &self.schema.columns[self.index]
    }

    /// The name exactly as stored in the file.
    pub fn name(&self) -> &'s str {
        &self.raw().name
    }

    /// The column's type.
    pub fn ty(&self) -> ColumnType {
        self.raw().type_
    }

    /// False for REQUIRED (NOT NULL) columns.
    pub fn nullable(&self) -> bool {
        self.raw().nullable
    }

    /// Index in the schema.
    pub fn index(&self) -> usize {
        self.index
    }

    /// A handle to this column (marks it used, see [`Schema::only_used_columns`]).
    pub fn col(&self) -> Col {
        self.schema.mark(self.index)
    }
}

impl fmt::Debug for ColumnDef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}{}",
            self.name(),
            self.ty(),
            if self.nullable() { "" } else { " not null" }
        )
    }
}

impl fmt::Display for ScalarType {
    /// `boolean`, `integer`, `float`, `decimal(38,0)`, `text`, `json`, `date`,
    /// `timestamp(millis,wall-clock)` / `timestamp(micros,utc)`, `binary`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScalarType::Boolean => f.write_str("boolean"),
            ScalarType::Integer => f.write_str("integer"),
            ScalarType::Float => f.write_str("float"),
            ScalarType::Decimal((p, s)) => write!(f, "decimal({p},{s})"),
            ScalarType::Text => f.write_str("text"),
            ScalarType::Json => f.write_str("json"),
            ScalarType::Date => f.write_str("date"),
            ScalarType::Timestamp(t) => write!(
                f,
                "timestamp({},{})",
                t.unit.name(),
                if t.wall_clock { "wall-clock" } else { "utc" }
            ),
            ScalarType::Binary => f.write_str("binary"),
        }
    }
}

impl fmt::Display for ColumnType {
    /// The scalar type, or `list<…>` of it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::Scalar(s) => fmt::Display::fmt(s, f),
            ColumnType::List(s) => write!(f, "list<{s}>"),
        }
    }
}

/// What a plugin says about itself: returned by [`Transform::describe`](crate::Transform::describe).
#[derive(Clone, Debug)]
pub struct Info {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) description: String,
    pub(crate) config: Vec<ConfigKeyInfo>,
}

/// A configuration key a plugin accepts (see [`Info::config_key`]).
#[derive(Clone, Debug)]
pub struct ConfigKeyInfo {
    /// The key.
    pub name: String,
    /// What it does, for a person.
    pub description: String,
    /// `init` fails when a required key is missing.
    pub required: bool,
    /// The value [`Config::get`] returns when the key is not given.
    pub default: Option<String>,
}

impl Info {
    /// A plugin called `name` at `version` (usually `env!("CARGO_PKG_VERSION")`).
    pub fn new(name: &str, version: &str) -> Info {
        Info {
            name: name.into(),
            version: version.into(),
            description: String::new(),
            config: Vec::new(),
        }
    }

    /// A one-line description.
    pub fn description(mut self, description: &str) -> Info {
        self.description = description.into();
        self
    }

    /// Declares a configuration key. The SDK checks the configuration before calling `init`:
    /// unknown keys and missing required keys are refused, and [`Config::get`] falls back to
    /// `default`.
    pub fn config_key(
        mut self,
        name: &str,
        description: &str,
        required: bool,
        default: Option<&str>,
    ) -> Info {
        self.config.push(ConfigKeyInfo {
            name: name.into(),
            description: description.into(),
            required,
            default: default.map(Into::into),
        });
        self
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The declared configuration keys.
    pub fn config_keys(&self) -> &[ConfigKeyInfo] {
        &self.config
    }

    pub(crate) fn to_wit(&self) -> PluginInfo {
        PluginInfo {
            name: self.name.clone(),
            version: self.version.clone(),
            description: self.description.clone(),
            config: self
                .config
                .iter()
                .map(|k| ConfigKey {
                    name: k.name.clone(),
                    description: k.description.clone(),
                    required: k.required,
                    default_value: k.default.clone(),
                })
                .collect(),
        }
    }
}

/// The user's `key=value` configuration for the plugin, checked against the keys declared in
/// [`Info`] (unknown keys and missing required keys never reach `init`).
#[derive(Clone, Debug, Default)]
pub struct Config {
    values: Vec<(String, String)>,
    defaults: Vec<(String, String)>,
}

impl Config {
    /// A configuration of these pairs with no defaults (unchecked: for tests).
    pub fn new(values: Vec<(String, String)>) -> Config {
        Config {
            values,
            defaults: Vec::new(),
        }
    }

    /// Checks `values` against `info`'s keys and applies defaults.
    pub(crate) fn checked(info: &Info, values: Vec<(String, String)>) -> Result<Config, String> {
        for (k, _) in &values {
            if !info.config.iter().any(|c| &c.name == k) {
                let known: Vec<&str> = info.config.iter().map(|c| c.name.as_str()).collect();
                return Err(if known.is_empty() {
                    format!(
                        "unknown config key '{k}': plugin {} takes no configuration",
                        info.name
                    )
                } else {
                    format!(
                        "unknown config key '{k}' (plugin {} accepts: {})",
                        info.name,
                        known.join(", ")
                    )
                });
            }
        }
        for c in &info.config {
            if c.required && !values.iter().any(|(k, _)| k == &c.name) {
                return Err(format!(
                    "config key '{}' is required ({})",
                    c.name, c.description
                ));
            }
        }
        let defaults = info
            .config
            .iter()
            .filter_map(|c| Some((c.name.clone(), c.default.clone()?)))
            .collect();
        Ok(Config { values, defaults })
    }

    /// The value of `key` (the last one given), else its declared default.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .chain(self.defaults.iter())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or `default`.
    pub fn get_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// The value of `key`, or an error naming it.
    pub fn require(&self, key: &str) -> Result<&str, String> {
        self.get(key)
            .ok_or_else(|| format!("config key '{key}' is required"))
    }

    /// The value of `key` parsed as `T` (`None` when absent), or an error naming the key and
    /// the value.
    pub fn parse<T: FromStr>(&self, key: &str) -> Result<Option<T>, String>
    where
        T::Err: fmt::Display,
    {
        self.get(key)
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|e| format!("config key '{key}': invalid value '{v}': {e}"))
            })
            .transpose()
    }

    /// The pairs the user gave, in order (defaults not included).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        let c = |name: &str, s| ColumnSchema {
            name: name.into(),
            type_: ColumnType::Scalar(s),
            nullable: true,
        };
        Schema::new(vec![
            c("CUSTOMER_ID", ScalarType::Decimal((38, 0))),
            c("name", ScalarType::Text),
            c("Name", ScalarType::Text),
            c("ÉTAT", ScalarType::Text),
        ])
    }

    #[test]
    fn lookup_is_case_insensitive_exact_first() {
        let s = schema();
        assert_eq!(s.column("customer_id"), Some(Col(0)));
        assert_eq!(s.column("Name"), Some(Col(2)));
        assert_eq!(s.column("name"), Some(Col(1)));
        assert_eq!(s.column("NAME"), Some(Col(1)));
        assert_eq!(s.column("état"), Some(Col(3)));
        assert_eq!(s.column("nope"), None);
        let err = s.require("EMAIL").unwrap_err();
        assert!(
            err.contains("EMAIL") && err.contains("CUSTOMER_ID"),
            "{err}"
        );
        assert_eq!(s.name(Col(0)), "CUSTOMER_ID");
    }

    #[test]
    fn projection_follows_use() {
        let s = schema();
        assert_eq!(s.projection(), None);
        s.column("name");
        s.only_used_columns();
        s.require("customer_id").unwrap();
        s.column("NAME");
        assert_eq!(s.projection(), Some(vec![1, 0]));
    }

    #[test]
    fn iteration_and_types() {
        let s = schema();
        let names: Vec<_> = s.iter().map(|c| c.name()).collect();
        assert_eq!(names, ["CUSTOMER_ID", "name", "Name", "ÉTAT"]);
        assert_eq!(s.def(Col(0)).ty().to_string(), "decimal(38,0)");
        let ts = ColumnType::List(ScalarType::Timestamp(TimestampType {
            unit: crate::TimeUnit::Millis,
            wall_clock: true,
        }));
        assert_eq!(ts.to_string(), "list<timestamp(millis,wall-clock)>");
    }

    #[test]
    fn config_is_checked() {
        let info = Info::new("p", "1")
            .config_key("mode", "what to do", true, None)
            .config_key("row", "which row", false, Some("0"));
        let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
        let c = Config::checked(&info, vec![kv("mode", "trap")]).unwrap();
        assert_eq!(c.get("mode"), Some("trap"));
        assert_eq!(c.get("row"), Some("0"));
        assert_eq!(c.parse::<u64>("row"), Ok(Some(0)));
        assert_eq!(c.get("other"), None);
        let c = Config::checked(&info, vec![kv("mode", "x"), kv("row", "x")]).unwrap();
        assert!(c.parse::<u64>("row").unwrap_err().contains("'row'"));
        let e = Config::checked(&info, vec![kv("mode", "x"), kv("mdoe", "y")]).unwrap_err();
        assert!(e.contains("mdoe") && e.contains("mode, row"), "{e}");
        let e = Config::checked(&info, vec![]).unwrap_err();
        assert!(e.contains("'mode' is required"), "{e}");
    }
}

/// Levenshtein distance of two character sequences.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod similar_tests {
    use super::edit_distance;

    #[test]
    fn edit_distance_counts_insertions_deletions_and_changes() {
        let d = |a: &str, b: &str| {
            let a: Vec<char> = a.chars().collect();
            let b: Vec<char> = b.chars().collect();
            edit_distance(&a, &b)
        };
        assert_eq!(d("EMAIL", "EMAIL"), 0);
        assert_eq!(d("EMAIL", "EMAILS"), 1);
        assert_eq!(d("EMIAL", "EMAIL"), 2);
        assert_eq!(d("", "ABC"), 3);
        assert_eq!(d("NAME", "COUNTRY"), 6);
    }
}
