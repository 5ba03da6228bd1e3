"""The example plugin in Python: Snowflake customer rows to CluedIn `Customer` entities.

The same mapping as `plugins/customer-rust` (its records and row errors are byte-identical):

| column | becomes |
|---|---|
| `CUSTOMER_ID` (required; NUMBER(38,0), integer or text) | the external id (`"42"`) |
| `NAME`, `COUNTRY` | properties `name`, `country` |
| `EMAIL` | property `email`, trimmed and lower-cased |
| `IS_ACTIVE` | property `isActive` |
| `UPDATED_AT` (TIMESTAMP_NTZ) | the entity timestamp and property `updatedAt` |
| `IS_DELETED` (optional) | `true`: a tombstone (deleted, no properties) |

Column names match case-insensitively; null values are omitted from the properties; a null
`CUSTOMER_ID` is a row error.
"""

from typing import Optional

from stagepush_plugin import Col, Config, Info, Level, Out, Row, Schema, export, log, trimmed

VERSION = "0.1.0"


class Customer:
    id: Col
    name: Optional[Col]
    email: Optional[Col]
    country: Optional[Col]
    is_active: Optional[Col]
    updated_at: Optional[Col]
    is_deleted: Optional[Col]

    @staticmethod
    def describe() -> Info:
        return Info("customer", VERSION).description(
            "Snowflake customer rows to CluedIn Customer entities"
        )

    @classmethod
    def init(cls, schema: Schema, config: Config) -> "Customer":
        # Only CUSTOMER_ID is required; a missing column leaves its property out.
        def column(name: str) -> Optional[Col]:
            col = schema.column(name)
            if col is None:
                log(Level.WARN, f"no column {name}: property left out")
            return col

        self = cls()
        self.id = schema.require("CUSTOMER_ID")
        self.name = column("NAME")
        self.email = column("EMAIL")
        self.country = column("COUNTRY")
        self.is_active = column("IS_ACTIVE")
        self.updated_at = column("UPDATED_AT")
        self.is_deleted = schema.column("IS_DELETED")
        schema.only_used_columns()
        return self

    def transform(self, row: Row, out: Out) -> None:
        id = row.require(self.id)
        updated_at = row.get(self.updated_at)
        if row.get_bool(self.is_deleted) is True:
            out.tombstone("Customer", id).timestamp(updated_at).finish()
            return
        (
            out.entity("Customer", id)
            .timestamp(updated_at)
            .prop("name", row.get(self.name))
            .prop("country", row.get(self.country))
            .prop_lowercase("email", trimmed(row.get(self.email)))
            .prop("isActive", row.get(self.is_active))
            .prop("updatedAt", updated_at)
            .finish()
        )


Plugin = export(Customer)
