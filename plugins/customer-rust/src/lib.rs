//! The example plugin: Snowflake customer rows to CluedIn `Customer` entities.
//!
//! | column | becomes |
//! |---|---|
//! | `CUSTOMER_ID` (required; NUMBER(38,0), integer or text) | the external id (`"42"`) |
//! | `NAME`, `COUNTRY` | properties `name`, `country` |
//! | `EMAIL` | property `email`, trimmed and lower-cased |
//! | `IS_ACTIVE` | property `isActive` |
//! | `UPDATED_AT` (TIMESTAMP_NTZ) | the entity timestamp and property `updatedAt` |
//! | `IS_DELETED` (optional) | `true`: a tombstone (deleted, no properties) |
//!
//! Column names match case-insensitively; null values are omitted from the properties; a null
//! `CUSTOMER_ID` is a row error.

use stagepush_plugin::prelude::*;

struct Customer {
    id: Col,
    name: Option<Col>,
    email: Option<Col>,
    country: Option<Col>,
    is_active: Option<Col>,
    updated_at: Option<Col>,
    is_deleted: Option<Col>,
}

impl Transform for Customer {
    fn describe() -> Info {
        Info::new("customer", env!("CARGO_PKG_VERSION"))
            .description("Snowflake customer rows to CluedIn Customer entities")
    }

    fn init(schema: &Schema, _config: &Config) -> Result<Self, String> {
        // Only CUSTOMER_ID is required; a missing column leaves its property out.
        let column = |name: &str| {
            let col = schema.column(name);
            if col.is_none() {
                log(Level::Warn, &format!("no column {name}: property left out"));
            }
            col
        };
        let customer = Customer {
            id: schema.require("CUSTOMER_ID")?,
            name: column("NAME"),
            email: column("EMAIL"),
            country: column("COUNTRY"),
            is_active: column("IS_ACTIVE"),
            updated_at: column("UPDATED_AT"),
            is_deleted: schema.column("IS_DELETED"),
        };
        schema.only_used_columns();
        Ok(customer)
    }

    fn transform(&mut self, row: &Row<'_>, out: &mut Out) -> Result<(), String> {
        let id = row.require(self.id)?;
        let updated_at = row.get(self.updated_at);
        if row.get_bool(self.is_deleted) == Some(true) {
            return out.tombstone("Customer", id).timestamp(updated_at).finish();
        }
        out.entity("Customer", id)
            .timestamp(updated_at)
            .prop("name", row.get(self.name))
            .prop("country", row.get(self.country))
            .prop_lowercase("email", row.get(self.email).trimmed())
            .prop("isActive", row.get(self.is_active))
            .prop("updatedAt", updated_at)
            .finish()
    }
}

stagepush_plugin::export!(Customer);

#[cfg(test)]
mod tests {
    use super::*;
    use stagepush_plugin::testing::{Harness, Val, col, ty};

    fn columns(id: stagepush_plugin::ColumnType) -> Vec<stagepush_plugin::ColumnSchema> {
        vec![
            col("CUSTOMER_ID", id),
            col("NAME", ty::text()),
            col("EMAIL", ty::text()),
            col("COUNTRY", ty::text()),
            col("IS_ACTIVE", ty::boolean()),
            col("UPDATED_AT", ty::timestamp_ntz(TimeUnit::Millis)),
            col("IS_DELETED", ty::boolean()),
        ]
    }

    fn row(id: Val, email: &str, deleted: Option<bool>) -> Vec<Val> {
        vec![
            id,
            "Ann".into(),
            email.into(),
            Val::Null,
            true.into(),
            Val::Timestamp(1_714_566_896_789, TimeUnit::Millis),
            deleted.into(),
        ]
    }

    #[test]
    fn maps_customers() {
        let mut h = Harness::<Customer>::new(columns(ty::decimal(38, 0)), &[]).unwrap();
        let r = h.run(vec![
            row(Val::dec(42, 0), "  Ann@Example.COM ", None),
            row(Val::Null, "x", None),
            row(Val::dec(43, 0), "a@b.c", Some(true)),
            row(Val::dec(44, 0), "a@b.c", Some(false)),
        ]);
        assert_eq!(r.errors, [(1, "CUSTOMER_ID is null".to_string())]);
        let e = &r.entities;
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[0].entity_type.as_str(), e[0].external_id.as_str()),
            ("Customer", "42")
        );
        let ts = Val::Timestamp(1_714_566_896_789, TimeUnit::Millis);
        assert_eq!(e[0].timestamp, ts);
        assert!(!e[0].deleted);
        assert_eq!(
            e[0].props,
            [
                ("name".to_string(), Val::from("Ann")),
                ("email".to_string(), Val::from("ann@example.com")),
                ("isActive".to_string(), Val::Bool(true)),
                ("updatedAt".to_string(), ts.clone()),
            ]
        );
        assert_eq!((e[1].external_id.as_str(), e[1].deleted), ("43", true));
        assert_eq!(e[1].timestamp, ts);
        assert!(e[1].props.is_empty());
        assert!(!e[2].deleted);
    }

    #[test]
    fn ids_of_other_types_and_case_insensitive_names() {
        let mut cols = columns(ty::text());
        for c in &mut cols {
            c.name = c.name.to_lowercase();
        }
        cols.pop();
        let mut h = Harness::<Customer>::new(cols, &[]).unwrap();
        assert_eq!(h.asked_columns(), Some(&[0u32, 1, 2, 3, 4, 5][..]));
        let mut r = row("C-1".into(), "a", None);
        r.pop();
        assert_eq!(h.run(vec![r]).entities[0].external_id, "C-1");

        let mut h = Harness::<Customer>::new(columns(ty::integer()), &[]).unwrap();
        let r = h.run(vec![row(Val::Int(-7), "a", None)]);
        assert_eq!(r.entities[0].external_id, "-7");
    }

    #[test]
    fn refuses_a_schema_without_customer_id() {
        let mut cols = columns(ty::text());
        cols.remove(0);
        let err = Harness::<Customer>::new(cols, &[]).err().unwrap();
        assert!(err.contains("CUSTOMER_ID"), "{err}");
    }
}
