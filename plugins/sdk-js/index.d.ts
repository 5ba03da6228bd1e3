// Type declarations of stagepush-plugin (index.js): the JavaScript SDK of stagepush
// transform plugins (contract stagepush:transform@0.2.0).

export type TimeUnit = 'seconds' | 'millis' | 'micros' | 'nanos';

/** A cell value: null, boolean, bigint (integer), number (float), string (text), or a wrapper. */
export type Value =
  | null
  | boolean
  | bigint
  | number
  | string
  | Json
  | Decimal
  | DateValue
  | Timestamp
  | Uint8Array
  | List;

/** What `prop` accepts: a Value, or a plain object/array (sent as JSON, bigints as numbers). */
export type PropValue = Value | undefined | object;

export type ValueKind =
  | 'null' | 'boolean' | 'integer' | 'float' | 'decimal' | 'text' | 'json' | 'date' | 'timestamp' | 'binary' | 'list';

export declare const Level: Readonly<{ Trace: 'trace'; Debug: 'debug'; Info: 'info'; Warn: 'warn'; Error: 'error' }>;
export type LevelName = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/** Writes a line to the host's log, attributed to the plugin. */
export declare function log(level: LevelName, message: string): void;

/** A row the plugin cannot transform: throw it from `transform`. */
export declare class RowError extends Error {
  constructor(message: string);
}

/** An exact decimal: `value * 10^-scale`. */
export declare class Decimal {
  constructor(value: bigint | number | string, scale?: number);
  readonly value: bigint;
  readonly scale: number;
  /** Whole and within 64 bits: the integer; else null. */
  toBigInt(): bigint | null;
  toNumber(): number;
  /** Exact text: `-12.30`. */
  toString(): string;
  toJSON(): string;
}

/** A calendar date: days since 1970-01-01. */
export declare class DateValue {
  constructor(days: number);
  readonly days: number;
  static fromYmd(year: number, month: number, day: number): DateValue;
  ymd(): [number, number, number];
  toTimestamp(): Timestamp;
  /** `2024-05-01`. */
  toString(): string;
  toJSON(): string;
}

/** `value` units since 1970-01-01T00:00:00; `wallClock` for TIMESTAMP_NTZ. */
export declare class Timestamp {
  constructor(value: bigint | number, unit?: TimeUnit, wallClock?: boolean);
  readonly value: bigint;
  readonly unit: TimeUnit;
  readonly wallClock: boolean;
  static fromMillis(ms: number | bigint): Timestamp;
  split(): [bigint, number];
  toMillis(): number;
  toJsDate(): Date;
  /** RFC 3339 in the unit's precision: `2024-05-01T12:34:56.789Z`. */
  toString(): string;
  toJSON(): string;
}

/** JSON text; parsed on demand. */
export declare class Json {
  constructor(text: string);
  readonly text: string;
  parse(): unknown;
  toString(): string;
}

/** A list cell. */
export declare class List implements Iterable<Value> {
  readonly length: number;
  get(i: number): Value;
  toArray(): Value[];
  [Symbol.iterator](): Iterator<Value>;
  /** JSON text of the list. */
  toString(): string;
}

export declare function kind(v: PropValue): ValueKind;
/** Rust `str::trim` (Unicode White_Space). */
export declare function trim(s: string): string;
/** Text trimmed; other values as they are. */
export declare function trimmed<T extends Value>(v: T): T;
export declare function emptyAsNull<T extends Value>(v: T): T | null;
/** Rust `str::to_lowercase` (final sigma included). */
export declare function lowercase(s: string): string;
export declare function asBool(v: Value): boolean | null;
export declare function asInt(v: Value): bigint | null;
export declare function asFloat(v: Value): number | null;
export declare function base64(b: Uint8Array): string;
/** JSON text of a value as the Rust SDK writes it. */
export declare function valueJson(v: PropValue): string;
/** JSON.stringify writing bigints as numbers. */
export declare function stringify(value: unknown): string;

/** A handle to an input column. */
export declare class Col {
  readonly index: number;
  readonly name: string;
}

export interface ColumnInfo {
  name: string;
  /** `decimal(38,0)`, `text`, `timestamp(millis,wall-clock)`, `list<text>`, ... */
  type: string;
  nullable: boolean;
}

/** The stage's columns; lookups are case-insensitive (an exact match wins). */
export declare class Schema {
  readonly length: number;
  column(name: string): Col | null;
  /** Up to 3 column names like `name` (case, `_`, `-`, spaces aside, or at most 2 edits apart). */
  similar(name: string): string[];
  /** Throws `required column NAME not found (columns: ...)`. */
  require(name: string): Col;
  colAt(index: number): Col | null;
  name(col: Col): string;
  columns(): ColumnInfo[];
  raw(): unknown[];
  /** The host sends only the columns a handle was taken to. */
  onlyUsedColumns(): void;
}

/** The plugin's self-description. */
export declare class Info {
  constructor(name: string, version: string);
  readonly name: string;
  readonly version: string;
  description(text: string): Info;
  configKey(name: string, description: string, required?: boolean, defaultValue?: string | null): Info;
}

/** The checked `key=value` configuration. */
export declare class Config {
  get(key: string): string | null;
  getOr(key: string, fallback: string): string;
  require(key: string): string;
  entries(): [string, string][];
}

export type ColRef = Col | string | null | undefined;

/** One input row (reused across a batch: do not keep it). */
export declare class Row {
  readonly index: number;
  readonly rowNumber: number;
  readonly fileKey: string;
  readonly partitions: [string, string | null][];
  readonly schema: Schema;
  get(col: ColRef): Value;
  isNull(col: ColRef): boolean;
  /** Throws RowError(`COLUMN is null`). */
  require(col: ColRef): Exclude<Value, null>;
  getStr(col: ColRef): string | null;
  getBool(col: ColRef): boolean | null;
  getInt(col: ColRef): bigint | null;
  getFloat(col: ColRef): number | null;
  getDecimal(col: ColRef): Decimal | null;
  getTimestamp(col: ColRef): Timestamp | null;
  getDate(col: ColRef): DateValue | null;
  getJson(col: ColRef): unknown;
  getBytes(col: ColRef): Uint8Array | null;
  getList(col: ColRef): List | null;
  partition(name: string): string | null | undefined;
}

/** Builds one entity; `finish()` commits it. */
export declare class EntityBuilder {
  timestamp(v: Timestamp | DateValue | null | undefined): this;
  deleted(flag?: boolean): this;
  /** Null values are omitted. */
  prop(name: string, value: PropValue): this;
  propOrNull(name: string, value: PropValue): this;
  propNull(name: string): this;
  propStr(name: string, value: string | null | undefined): this;
  propJson(name: string, value: unknown): this;
  propBool(name: string, value: boolean | null | undefined): this;
  propInt(name: string, value: bigint | number | null | undefined): this;
  propFloat(name: string, value: number | null | undefined): this;
  propLowercase(name: string, value: PropValue): this;
  /** Throws RowError for a null/empty id or a timestamp of the wrong kind. */
  finish(): void;
}

/** Where a row's entities go. */
export declare class Out {
  readonly length: number;
  entity(entityType: string, externalId: PropValue): EntityBuilder;
  tombstone(entityType: string, externalId: PropValue): EntityBuilder;
}

export interface PluginClass<T extends { transform(row: Row, out: Out): void }> {
  describe(): Info;
  /** Throw to refuse the schema or configuration. */
  init(schema: Schema, config: Config): T;
}

/** The contract's `plugin` export: `export const plugin = exportPlugin(MyPlugin);`. */
export declare function exportPlugin<T extends { transform(row: Row, out: Out): void }>(
  P: PluginClass<T>,
): { describe(): unknown; init(schema: unknown[], config: [string, string][]): unknown; transform(batch: unknown): unknown };
