// The example plugin in JavaScript: Snowflake customer rows to CluedIn `Customer` entities.
// The same transform as plugins/customer-rust (records byte-identical, same row errors):
//
// | column                                                  | becomes                                      |
// |---------------------------------------------------------|----------------------------------------------|
// | CUSTOMER_ID (required; NUMBER(38,0), integer or text)   | the external id ("42")                        |
// | NAME, COUNTRY                                           | properties name, country                      |
// | EMAIL                                                   | property email, trimmed and lower-cased       |
// | IS_ACTIVE                                               | property isActive                             |
// | UPDATED_AT (TIMESTAMP_NTZ)                              | the entity timestamp and property updatedAt   |
// | IS_DELETED (optional)                                   | true: a tombstone (deleted, no properties)    |
//
// Column names match case-insensitively; null values are omitted from the properties; a
// null CUSTOMER_ID is a row error.

import { Info, Level, exportPlugin, log, trimmed } from 'stagepush-plugin';

const VERSION = '0.1.0';

class Customer {
  static describe() {
    return new Info('customer', VERSION).description('Snowflake customer rows to CluedIn Customer entities');
  }

  static init(schema, _config) {
    return new Customer(schema);
  }

  constructor(schema) {
    // Only CUSTOMER_ID is required; a missing column leaves its property out.
    const column = (name) => {
      const col = schema.column(name);
      if (col === null) log(Level.Warn, `no column ${name}: property left out`);
      return col;
    };
    this.id = schema.require('CUSTOMER_ID');
    this.name = column('NAME');
    this.email = column('EMAIL');
    this.country = column('COUNTRY');
    this.isActive = column('IS_ACTIVE');
    this.updatedAt = column('UPDATED_AT');
    this.isDeleted = schema.column('IS_DELETED');
    schema.onlyUsedColumns();
  }

  transform(row, out) {
    const id = row.require(this.id);
    const updatedAt = row.get(this.updatedAt);
    if (row.getBool(this.isDeleted) === true) {
      out.tombstone('Customer', id).timestamp(updatedAt).finish();
      return;
    }
    out
      .entity('Customer', id)
      .timestamp(updatedAt)
      .prop('name', row.get(this.name))
      .prop('country', row.get(this.country))
      .propLowercase('email', trimmed(row.get(this.email)))
      .prop('isActive', row.get(this.isActive))
      .prop('updatedAt', updatedAt)
      .finish();
  }
}

export const plugin = exportPlugin(Customer);
