//! The `[mapping]` section of the run configuration, as written (strict: unknown keys are
//! errors naming the key). One entity per row:
//!
//! ```toml
//! [mapping]
//! type = "Customer"                 # the entity type (a name, not an expression)
//! id = "CUSTOMER_ID"                # an expression: the external id
//! timestamp = "UPDATED_AT"          # optional: a date or timestamp expression
//! deleted = "IS_DELETED"            # optional: true makes the row a tombstone
//! [mapping.properties]              # name = expression, in this order; or properties = "*"
//! email = "lower(trim(EMAIL))"
//! "*" = "*"                         # every column not used above, by its own name
//! ```
//!
//! Several entities per row: `[[mapping.entity]]` tables with the same keys instead.

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

use super::MappingError;

/// The key (and value) that stands for "every other column".
pub const EVERY_OTHER_COLUMN: &str = "*";

/// `[mapping]` as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    #[serde(rename = "type")]
    pub entity_type: Option<String>,
    pub id: Option<String>,
    pub timestamp: Option<String>,
    pub deleted: Option<String>,
    pub properties: Option<Properties>,
    /// `[[mapping.entity]]`: several entities from each row.
    #[serde(default)]
    pub entity: Vec<EntityConfig>,
}

/// One `[[mapping.entity]]` (or the `[mapping]` keys of a single entity).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityConfig {
    #[serde(rename = "type")]
    pub entity_type: String,
    pub id: String,
    pub timestamp: Option<String>,
    pub deleted: Option<String>,
    #[serde(default)]
    pub properties: Properties,
}

/// Property name → expression, in the order written. `"*" = "*"` (or `properties = "*"`)
/// adds every column the entity does not use otherwise, under the column's own name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Properties(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for Properties {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Properties;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table of name = \"expression\", or \"*\" for every column")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Properties, E> {
                if s == EVERY_OTHER_COLUMN {
                    Ok(Properties(vec![(s.into(), s.into())]))
                } else {
                    Err(E::custom(format!(
                        "properties = \"{s}\": a string here must be \"*\" (every other column); use a table of name = \"expression\" otherwise"
                    )))
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Properties, A::Error> {
                let mut out: Vec<(String, String)> = Vec::new();
                while let Some((name, expr)) = map.next_entry::<String, String>()? {
                    if out.iter().any(|(n, _)| *n == name) {
                        return Err(serde::de::Error::custom(format!(
                            "property {name} is given twice"
                        )));
                    }
                    out.push((name, expr));
                }
                Ok(Properties(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl MappingConfig {
    /// The entities, whichever way they were written. An error when neither or both ways
    /// were used, or a single entity lacks its type or id.
    pub fn entities(&self) -> Result<Vec<EntityConfig>, MappingError> {
        let single = self.entity_type.is_some()
            || self.id.is_some()
            || self.timestamp.is_some()
            || self.deleted.is_some()
            || self.properties.is_some();
        match (single, self.entity.is_empty()) {
            (true, false) => Err(MappingError::Invalid(
                "give the entity's keys (type, id, …) either in [mapping] or in [[mapping.entity]] tables, not both".into(),
            )),
            (false, true) => Err(MappingError::Invalid(
                "no entity: set type and id (or add [[mapping.entity]] tables)".into(),
            )),
            (false, false) => Ok(self.entity.clone()),
            (true, true) => {
                let missing = |key: &str| MappingError::Invalid(format!("no {key}: set [mapping] {key}"));
                Ok(vec![EntityConfig {
                    entity_type: self.entity_type.clone().ok_or_else(|| missing("type"))?,
                    id: self.id.clone().ok_or_else(|| missing("id"))?,
                    timestamp: self.timestamp.clone(),
                    deleted: self.deleted.clone(),
                    properties: self.properties.clone().unwrap_or_default(),
                }])
            }
        }
    }
}
