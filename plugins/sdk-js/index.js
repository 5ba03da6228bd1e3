// stagepush-plugin: write stagepush transform plugins in JavaScript.
//
// A stagepush plugin is a WebAssembly component implementing `stagepush:transform@0.2.0`
// (wit/since_v0.2.0/transform.wit). Batches of rows arrive in columns and entities go back
// in packed byte columns; this module hides both behind the same concepts as the Rust SDK
// (plugins/sdk-rust): a plugin class with `describe` / `init` / `transform`, column handles
// from a case-insensitive `Schema`, typed getters on a `Row`, and entity builders on `Out`.
//
//   import { Info, RowError, exportPlugin, trimmed } from 'stagepush-plugin';
//
//   class Customer {
//     static describe() { return new Info('customer', '0.1.0'); }
//     static init(schema, config) { return new Customer(schema); }
//     constructor(schema) { this.id = schema.require('CUSTOMER_ID'); this.email = schema.column('EMAIL'); }
//     transform(row, out) {
//       out.entity('Customer', row.require(this.id))
//         .propLowercase('email', trimmed(row.get(this.email)))
//         .finish();
//     }
//   }
//   export const plugin = exportPlugin(Customer);
//
// Values (what `row.get` returns and what `prop` accepts):
//   null, boolean, bigint (integer), number (float), string (text), Json (JSON text),
//   Decimal (exact: bigint value and scale), DateValue (days since 1970-01-01), Timestamp
//   (bigint value, unit, wall-clock flag; `toString()` is RFC 3339), Uint8Array (binary),
//   List (a list cell). `prop` also takes plain objects and arrays: sent as JSON (bigints
//   as numbers).
//
// Row errors: throw `RowError` (or any error) from `transform`; the row's entities are
// discarded and the row is reported with the error's message (`e.message` for a RowError,
// `Name: message` for other errors). `row.require(col)` and `finish()` throw RowError.
//
// The build (cargo xtask plugins) bundles this file next to a plugin's app.js and resolves
// `import ... from 'stagepush-plugin'` to it; ComponentizeJS makes the component.

import { log as hostLog } from 'stagepush:transform/host@0.2.0';

// ---------------------------------------------------------------------------------------
// Logging

/** Log levels of the host's log. */
export const Level = Object.freeze({
  Trace: 'trace',
  Debug: 'debug',
  Info: 'info',
  Warn: 'warn',
  Error: 'error',
});

/** Insertions, deletions and changes that turn `a` into `b`. */
function editDistance(a, b) {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 0; i < a.length; i++) {
    let diagonal = row[0];
    row[0] = i + 1;
    for (let j = 0; j < b.length; j++) {
      const above = row[j + 1];
      row[j + 1] = Math.min(above + 1, row[j] + 1, diagonal + (a[i] === b[j] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

/** Writes a line to the host's log, attributed to the plugin. */
export function log(level, message) {
  hostLog(level, String(message));
}

// ---------------------------------------------------------------------------------------
// Errors

/** A row the plugin cannot transform: throw it from `transform`. */
export class RowError extends Error {
  constructor(message) {
    super(message);
    this.name = 'RowError';
  }
}

// ---------------------------------------------------------------------------------------
// Values

const PER_SECOND = { seconds: 1n, millis: 1000n, micros: 1000000n, nanos: 1000000000n };
const PER_SECOND_NUM = { seconds: 1, millis: 1000, micros: 1000000, nanos: 1000000000 };
const FRACTION_DIGITS = { seconds: 0, millis: 3, micros: 6, nanos: 9 };
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

/** An exact decimal number: `value * 10^-scale` (value a bigint, up to 128 bits). */
export class Decimal {
  constructor(value, scale = 0) {
    this.value = typeof value === 'bigint' ? value : BigInt(value);
    this.scale = scale | 0;
  }

  /** The value as a bigint integer when it is whole and fits 64 bits, else null. */
  toBigInt() {
    let v;
    if (this.scale <= 0) {
      v = this.value * 10n ** BigInt(-this.scale);
    } else {
      const f = 10n ** BigInt(this.scale);
      if (this.value % f !== 0n) return null;
      v = this.value / f;
    }
    return v >= I64_MIN && v <= I64_MAX ? v : null;
  }

  /** The nearest float. */
  toNumber() {
    return Number(this.value) * 10 ** -this.scale;
  }

  /** Exact text: `-12.30`, `42`, `0.005`. */
  toString() {
    if (this.scale === 0) return this.value.toString();
    const neg = this.value < 0n;
    const digits = (neg ? -this.value : this.value).toString();
    const sign = neg ? '-' : '';
    const s = this.scale;
    if (s <= 0) {
      return sign + digits + (this.value !== 0n ? '0'.repeat(-s) : '');
    }
    if (digits.length > s) {
      return sign + digits.slice(0, digits.length - s) + '.' + digits.slice(digits.length - s);
    }
    return sign + '0.' + '0'.repeat(s - digits.length) + digits;
  }

  toJSON() {
    return this.toString();
  }
}

function civilFromDays(z) {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const y = yoe + era * 400;
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [m <= 2 ? y + 1 : y, m, d];
}

function daysFromCivil(y, m, d) {
  y = m <= 2 ? y - 1 : y;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function pad(n, width) {
  const s = String(n);
  return s.length >= width ? s : '0'.repeat(width - s.length) + s;
}

function ymdText(y, m, d) {
  return (y < 0 ? '-' + pad(-y, 4) : pad(y, 4)) + '-' + pad(m, 2) + '-' + pad(d, 2);
}

/** A calendar date: days since 1970-01-01. */
export class DateValue {
  constructor(days) {
    this.days = days | 0;
  }

  static fromYmd(year, month, day) {
    return new DateValue(daysFromCivil(year, month, day));
  }

  /** [year, month, day]. */
  ymd() {
    return civilFromDays(this.days);
  }

  /** Midnight of the date, as a wall-clock timestamp in seconds. */
  toTimestamp() {
    return new Timestamp(BigInt(this.days) * 86400n, 'seconds', true);
  }

  /** `2024-05-01`. */
  toString() {
    const [y, m, d] = civilFromDays(this.days);
    return ymdText(y, m, d);
  }

  toJSON() {
    return this.toString();
  }
}

/** A timestamp: `value` (bigint) `unit`s since 1970-01-01T00:00:00; `wallClock` for TIMESTAMP_NTZ. */
export class Timestamp {
  constructor(value, unit = 'millis', wallClock = false) {
    this.value = typeof value === 'bigint' ? value : BigInt(value);
    this.unit = unit;
    this.wallClock = wallClock;
  }

  static fromMillis(ms) {
    return new Timestamp(BigInt(ms), 'millis', false);
  }

  /** [seconds, nanoseconds] since the epoch (seconds a bigint). */
  split() {
    const per = PER_SECOND[this.unit];
    let secs = this.value / per;
    let rem = this.value % per;
    if (rem < 0n) {
      secs -= 1n;
      rem += per;
    }
    return [secs, Number(rem) * (1000000000 / PER_SECOND_NUM[this.unit])];
  }

  /** Milliseconds since the epoch (a number). */
  toMillis() {
    const [secs, nanos] = this.split();
    return Number(secs) * 1000 + Math.floor(nanos / 1000000);
  }

  /** A JavaScript Date (millisecond precision). */
  toJsDate() {
    return new Date(this.toMillis());
  }

  /** RFC 3339 with the unit's precision: `2024-05-01T12:34:56.789Z`. */
  toString() {
    const [secsBig, nanos] = this.split();
    const secs = Number(secsBig);
    const days = Math.floor(secs / 86400);
    const sod = secs - days * 86400;
    const [y, m, d] = civilFromDays(days);
    let s =
      ymdText(y, m, d) +
      'T' +
      pad(Math.floor(sod / 3600), 2) +
      ':' +
      pad(Math.floor(sod / 60) % 60, 2) +
      ':' +
      pad(sod % 60, 2);
    const frac = FRACTION_DIGITS[this.unit];
    if (frac > 0) s += '.' + pad(Math.floor(nanos / 10 ** (9 - frac)), frac);
    return s + 'Z';
  }

  toJSON() {
    return this.toString();
  }
}

/** JSON text (a VARIANT, OBJECT or ARRAY cell); parsed on demand. */
export class Json {
  constructor(text) {
    this.text = text;
  }

  /** The parsed value (numbers as JavaScript numbers). */
  parse() {
    return JSON.parse(this.text);
  }

  toString() {
    return this.text;
  }
}

/** A list cell: `length`, `get(i)`, iteration. */
export class List {
  constructor(items, itemNulls, start, end) {
    this._items = items;
    this._nulls = itemNulls;
    this._start = start;
    this._end = end;
  }

  get length() {
    return this._end - this._start;
  }

  get(i) {
    const j = this._start + i;
    if (i < 0 || j >= this._end) return null;
    if (this._nulls.length !== 0 && this._nulls[j] !== 0) return null;
    return this._items.get(j);
  }

  toArray() {
    const a = [];
    for (let i = 0; i < this.length; i++) a.push(this.get(i));
    return a;
  }

  [Symbol.iterator]() {
    return this.toArray()[Symbol.iterator]();
  }

  /** JSON text of the list, as the Rust SDK writes it. */
  toString() {
    return listJson(this);
  }
}

/** The kind of a value: `null`, `boolean`, `integer`, `float`, `decimal`, `text`, `json`, `date`, `timestamp`, `binary`, `list`. */
export function kind(v) {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'boolean':
      return 'boolean';
    case 'bigint':
      return 'integer';
    case 'number':
      return 'float';
    case 'string':
      return 'text';
  }
  if (v instanceof Json) return 'json';
  if (v instanceof Decimal) return 'decimal';
  if (v instanceof DateValue) return 'date';
  if (v instanceof Timestamp) return 'timestamp';
  if (v instanceof Uint8Array) return 'binary';
  if (v instanceof List) return 'list';
  return 'json';
}

// Rust's `char::is_whitespace` (Unicode White_Space), which `str::trim` uses; JavaScript's
// `trim` differs (it trims U+FEFF, not U+0085).
const TRIM = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;

// Whether a UTF-16 code unit is White_Space (the class of TRIM): checking the first and last
// one is cheaper than a regular expression, most text needing no trim.
function isSpace(c) {
  if (c <= 32) return c === 32 || (c >= 9 && c <= 13);
  if (c < 0x85) return false;
  return (
    c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000
  );
}

function unicodeRegExp(source, fallback) {
  try {
    return new RegExp(source, 'u');
  } catch {
    return fallback;
  }
}

// Unicode Case_Ignorable and Cased, when the engine has the property tables (StarlingMonkey
// is built without them); else close approximations.
const CASE_IGNORABLE = unicodeRegExp(
  '^\\p{Case_Ignorable}$',
  /^[\u0027\u002e\u003a\u005e\u0060\u00a8\u00ad\u00af\u00b4\u00b7\u00b8\u02b0-\u036f\u0374\u0375\u037a\u0384\u0385\u0387\u0483-\u0489\u0591-\u05bd\u2018\u2019\u2024\u2027\u200b-\u200f\u2060-\u2064\ufe00-\ufe0f\ufeff]$/,
);
const CASED = unicodeRegExp('^\\p{Cased}$', null);

function isCased(c) {
  if (CASED !== null) return CASED.test(c);
  return c !== c.toLowerCase() || c !== c.toUpperCase();
}

// Case_Ignorable characters skipped, is the next one cased?
function casedAfterIgnorable(chars, from, step) {
  for (let i = from; i >= 0 && i < chars.length; i += step) {
    if (!CASE_IGNORABLE.test(chars[i])) return isCased(chars[i]);
  }
  return false;
}

/**
 * Lower-cased text, as Rust's `str::to_lowercase`: `toLowerCase` plus the final-sigma rule
 * (a word-final capital sigma becomes ς), which engines without Intl data skip.
 */
export function lowercase(s) {
  const lower = s.toLowerCase();
  if (!s.includes('\u03a3')) return lower;
  const chars = Array.from(s);
  const out = Array.from(lower);
  if (chars.length !== out.length) {
    // A mapping changed the length (İ): map character by character.
    return chars.map((c, i) => (c === '\u03a3' ? sigma(chars, i) : c.toLowerCase())).join('');
  }
  for (let i = 0; i < chars.length; i++) if (chars[i] === '\u03a3') out[i] = sigma(chars, i);
  return out.join('');
}

function sigma(chars, i) {
  const final = casedAfterIgnorable(chars, i - 1, -1) && !casedAfterIgnorable(chars, i + 1, 1);
  return final ? '\u03c2' : '\u03c3';
}

/** Text with leading and trailing Unicode white space removed (as Rust's `str::trim`). */
export function trim(s) {
  const n = s.length;
  if (n === 0) return s;
  const a = s.charCodeAt(0);
  const z = s.charCodeAt(n - 1);
  // Printable ASCII at both ends (the usual case) answers without a call.
  if ((a > 32 && a < 0x85 && z > 32 && z < 0x85) || (!isSpace(a) && !isSpace(z))) return s;
  return s.replace(TRIM, '');
}

/** Text trimmed; any other value as is. */
export function trimmed(v) {
  return typeof v === 'string' ? trim(v) : v;
}

/** Empty text as null; any other value as is. */
export function emptyAsNull(v) {
  return v === '' ? null : v;
}

/** A value as a boolean (booleans, 0/1 integers and decimals, `true`/`false`/`1`/`0` text), else null. */
export function asBool(v) {
  switch (typeof v) {
    case 'boolean':
      return v;
    case 'bigint':
      return v === 0n ? false : v === 1n ? true : null;
    case 'string': {
      const s = trim(v).toLowerCase();
      if (s === 'true' || s === '1') return true;
      if (s === 'false' || s === '0') return false;
      return null;
    }
  }
  if (v instanceof Decimal) {
    const i = v.toBigInt();
    return i === 0n ? false : i === 1n ? true : null;
  }
  return null;
}

const INT_TEXT = /^[+-]?[0-9]+$/;

/** A value as a bigint integer (integers, whole decimals, integer text), else null. */
export function asInt(v) {
  if (typeof v === 'bigint') return v;
  if (v instanceof Decimal) return v.toBigInt();
  if (typeof v === 'string') {
    const s = trim(v);
    if (!INT_TEXT.test(s)) return null;
    const i = BigInt(s);
    return i >= I64_MIN && i <= I64_MAX ? i : null;
  }
  return null;
}

/** A value as a float (floats, integers, decimals, numeric text), else null. */
export function asFloat(v) {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Decimal) return v.toNumber();
  if (typeof v === 'string') {
    const s = trim(v);
    if (s === '') return null;
    const f = Number(s);
    return Number.isNaN(f) && s !== 'NaN' ? null : f;
  }
  return null;
}

// ---------------------------------------------------------------------------------------
// Schema, configuration, self-description

/** A handle to an input column (from `schema.column` / `schema.require`). */
export class Col {
  constructor(index, name) {
    this.index = index;
    this.name = name;
  }
}

function typeText(t) {
  switch (t.tag) {
    case 'decimal':
      return `decimal(${t.val[0]},${t.val[1]})`;
    case 'timestamp':
      return `timestamp(${t.val.unit},${t.val.wallClock ? 'wall-clock' : 'utc'})`;
    default:
      return t.tag;
  }
}

/** The columns of the stage's files; lookups are case-insensitive (an exact match wins). */
export class Schema {
  constructor(columns) {
    this._columns = columns;
    this._used = [];
    this._onlyUsed = false;
    this._handles = new Map();
    this._byName = new Map();
  }

  get length() {
    return this._columns.length;
  }

  /** The column named `name` (case-insensitive), or null. */
  column(name) {
    const i = this._find(name);
    if (i < 0) {
      // A name that finds nothing but a similar column (a misspelling): a warning the run
      // reports once (as the Rust SDK does).
      const close = this.similar(name);
      if (close.length > 0) log(Level.Warn, `no column ${name} (did you mean ${close.join(', ')}?)`);
      return null;
    }
    return this._mark(i);
  }

  /** Up to 3 column names like `name`: equal but for case, `_`, `-` and spaces, or at most
   * 2 edits apart (names of 4 characters or more). */
  similar(name) {
    const squash = (s) => s.replace(/[_\- ]/g, '').toUpperCase();
    const wanted = squash(name);
    const out = [];
    for (const c of this._columns) {
      const have = squash(c.name);
      if (have === wanted || (wanted.length >= 4 && editDistance(have, wanted) <= 2)) {
        out.push(c.name);
        if (out.length === 3) break;
      }
    }
    return out;
  }

  /** The column named `name`, or throws an error naming it and listing the columns. */
  require(name) {
    const c = this.column(name);
    if (c === null) {
      const names = this._columns.map((c) => c.name).join(', ');
      throw new Error(`required column ${name} not found (columns: ${names})`);
    }
    return c;
  }

  /** The column at `index`, or null. */
  colAt(index) {
    return index >= 0 && index < this._columns.length ? this._mark(index) : null;
  }

  /** Name of a column. */
  name(col) {
    const c = this._columns[col.index];
    return c ? c.name : '';
  }

  /** `[{name, type, nullable}]`, types as text (`decimal(38,0)`, `list<text>`, `timestamp(millis,wall-clock)`). */
  columns() {
    return this._columns.map((c) => ({
      name: c.name,
      type: c.type.tag === 'list' ? `list<${typeText(c.type.val)}>` : typeText(c.type.val),
      nullable: c.nullable,
    }));
  }

  /** The columns as the host described them. */
  raw() {
    return this._columns;
  }

  /** Asks the host to send only the columns this plugin took a handle to, in first-use order. */
  onlyUsedColumns() {
    this._onlyUsed = true;
  }

  _find(name) {
    const cols = this._columns;
    for (let i = 0; i < cols.length; i++) if (cols[i].name === name) return i;
    const lower = name.toLowerCase();
    for (let i = 0; i < cols.length; i++) if (cols[i].name.toLowerCase() === lower) return i;
    return -1;
  }

  _mark(i) {
    if (!this._used.includes(i)) this._used.push(i);
    let h = this._handles.get(i);
    if (!h) {
      h = new Col(i, this._columns[i].name);
      this._handles.set(i, h);
    }
    return h;
  }

  // A column by name during transform (no marking): cached.
  _lookup(name) {
    let h = this._byName.get(name);
    if (h === undefined) {
      const i = this._find(name);
      h = i < 0 ? null : this._handles.get(i) || new Col(i, this._columns[i].name);
      this._byName.set(name, h);
    }
    return h;
  }

  _projection() {
    return this._onlyUsed ? Uint32Array.from(this._used) : undefined;
  }
}

/** What a plugin says about itself: returned by the plugin class's static `describe()`. */
export class Info {
  constructor(name, version) {
    this.name = name;
    this.version = version;
    this._description = '';
    this.config = [];
  }

  description(text) {
    this._description = text;
    return this;
  }

  /** Declares a configuration key (unknown and missing required keys are refused before init). */
  configKey(name, description, required = false, defaultValue = null) {
    this.config.push({ name, description, required, defaultValue });
    return this;
  }

  _toWit() {
    return {
      name: this.name,
      version: this.version,
      description: this._description,
      config: this.config.map((k) => ({
        name: k.name,
        description: k.description,
        required: k.required,
        defaultValue: k.defaultValue === null || k.defaultValue === undefined ? undefined : k.defaultValue,
      })),
    };
  }
}

/** The user's `key=value` configuration, checked against the keys declared in Info. */
export class Config {
  constructor(values, defaults = []) {
    this._values = values;
    this._defaults = defaults;
  }

  static _checked(info, values) {
    for (const [k] of values) {
      if (!info.config.some((c) => c.name === k)) {
        const known = info.config.map((c) => c.name);
        throw new Error(
          known.length === 0
            ? `unknown config key '${k}': plugin ${info.name} takes no configuration`
            : `unknown config key '${k}' (plugin ${info.name} accepts: ${known.join(', ')})`,
        );
      }
    }
    for (const c of info.config) {
      if (c.required && !values.some(([k]) => k === c.name)) {
        throw new Error(`config key '${c.name}' is required (${c.description})`);
      }
    }
    const defaults = info.config
      .filter((c) => c.defaultValue !== null && c.defaultValue !== undefined)
      .map((c) => [c.name, c.defaultValue]);
    return new Config(values, defaults);
  }

  /** The value of `key` (the last one given), else its declared default, else null. */
  get(key) {
    for (let i = this._values.length - 1; i >= 0; i--) if (this._values[i][0] === key) return this._values[i][1];
    for (const [k, v] of this._defaults) if (k === key) return v;
    return null;
  }

  getOr(key, fallback) {
    const v = this.get(key);
    return v === null ? fallback : v;
  }

  /** The value of `key`, or throws an error naming it. */
  require(key) {
    const v = this.get(key);
    if (v === null) throw new Error(`config key '${key}' is required`);
    return v;
  }

  /** The pairs the user gave, in order. */
  entries() {
    return this._values.slice();
  }
}

// ---------------------------------------------------------------------------------------
// Batches and rows

// ignoreBOM: keep a leading U+FEFF (the decoder strips it by default; Rust does not).
const FATAL = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// A variable-length column (text, json, binary).
class Bytes {
  constructor(c, isText) {
    this.data = c.data;
    this.offsets = c.offsets;
    this.isText = isText;
    this.whole = undefined; // undefined: not decoded yet; null: not valid UTF-8 as a whole
    this.ascii = false;
  }

  bytes(i) {
    return this.data.subarray(this.offsets[i], this.offsets[i + 1]);
  }

  // Every value as text (a value that is not valid UTF-8 as its bytes), in `out`; `wrap`
  // (or null) applies to the text ones.
  fillStrings(out, n, wrap) {
    const data = this.data;
    const offs = this.offsets;
    let whole = null;
    try {
      whole = FATAL.decode(data);
    } catch {
      whole = null;
    }
    if (whole !== null && whole.length === data.length) {
      // ASCII: every value decodes. (In StarlingMonkey the native decoder is faster than
      // `substring` of the whole text, which is self-hosted JS run by the interpreter.)
      for (let i = 0; i < n; i++) {
        const a = offs[i];
        const e = offs[i + 1];
        const s = a === e ? '' : FATAL.decode(data.subarray(a, e));
        out[i] = wrap === null ? s : wrap(s);
      }
      return;
    }
    for (let i = 0; i < n; i++) {
      const a = offs[i];
      const e = offs[i + 1];
      let s = '';
      if (a !== e) {
        try {
          s = FATAL.decode(data.subarray(a, e));
        } catch {
          out[i] = data.subarray(a, e); // not UTF-8: the bytes, as `get` gives them
          continue;
        }
      }
      out[i] = wrap === null ? s : wrap(s);
    }
  }

  // Text of value i, or null when it is not valid UTF-8.
  str(i) {
    if (this.whole === undefined) {
      try {
        this.whole = FATAL.decode(this.data);
        this.ascii = this.whole.length === this.data.length;
      } catch {
        this.whole = null;
      }
    }
    const s = this.offsets[i];
    const e = this.offsets[i + 1];
    if (this.ascii) return this.whole.substring(s, e);
    if (s === e) return '';
    try {
      return FATAL.decode(this.data.subarray(s, e));
    } catch {
      return null;
    }
  }
}

function newJson(s) {
  return new Json(s);
}

// The values of one column (or of a list column's items).
class Data {
  constructor(type, values) {
    const t = type.tag;
    if (t !== values.tag) {
      throw new Error(`the schema says ${typeText(type)}, the batch holds ${values.tag} values`);
    }
    this.tag = t;
    this.v = values.val;
    this.unit = t === 'timestamp' ? type.val.unit : null;
    this.wallClock = t === 'timestamp' ? type.val.wallClock : false;
    if (t === 'text' || t === 'json' || t === 'binary') this.v = new Bytes(values.val, t !== 'binary');
  }

  get length() {
    const v = this.v;
    return v instanceof Bytes ? v.offsets.length - 1 : v.length;
  }

  // The first `n` values into `out`: one type dispatch per column, not per cell.
  fill(out, n) {
    const v = this.v;
    switch (this.tag) {
      case 'text':
        v.fillStrings(out, n, null);
        return;
      case 'json':
        v.fillStrings(out, n, newJson);
        return;
      case 'boolean':
        for (let i = 0; i < n; i++) out[i] = v[i] !== 0;
        return;
      case 'timestamp': {
        const unit = this.unit;
        const wallClock = this.wallClock;
        for (let i = 0; i < n; i++) out[i] = new Timestamp(v[i], unit, wallClock);
        return;
      }
      case 'decimal':
        for (let i = 0; i < n; i++) {
          const d = v[i];
          // Most decimals (ids) fit 64 bits: no 128-bit arithmetic for those.
          const value = d.hi === 0n ? d.lo : (BigInt(d.hi) << 64n) | BigInt(d.lo);
          out[i] = new Decimal(value, d.scale);
        }
        return;
    }
    for (let i = 0; i < n; i++) out[i] = this.get(i);
  }

  get(i) {
    const v = this.v;
    switch (this.tag) {
      case 'text': {
        const s = v.str(i);
        return s === null ? v.bytes(i) : s;
      }
      case 'integer':
        return v[i];
      case 'boolean':
        return v[i] !== 0;
      case 'timestamp':
        return new Timestamp(v[i], this.unit, this.wallClock);
      case 'decimal': {
        const d = v[i];
        return new Decimal((BigInt(d.hi) << 64n) | BigInt(d.lo), d.scale);
      }
      case 'float':
        return v[i];
      case 'json': {
        const s = v.str(i);
        return s === null ? v.bytes(i) : new Json(s);
      }
      case 'date':
        return new DateValue(v[i]);
      case 'binary':
        return v.bytes(i);
    }
    return null;
  }
}

class ColView {
  constructor(type, column, n) {
    const nulls = column.nulls;
    if (nulls.length !== 0 && nulls.length !== n) throw new Error(`${nulls.length} null flags for ${n} rows`);
    this.nulls = nulls.length === 0 ? null : nulls;
    this.n = n;
    this.vals = null;
    if (type.tag === 'scalar' && column.data.tag === 'scalar') {
      this.data = new Data(type.val, column.data.val);
      if (this.data.length !== n) throw new Error(`${this.data.length} values for ${n} rows`);
      this.list = null;
    } else if (type.tag === 'list' && column.data.tag === 'list') {
      const l = column.data.val;
      this.data = new Data(type.val, l.items);
      if (l.offsets.length !== n + 1) throw new Error(`${l.offsets.length} list offsets for ${n} rows`);
      this.list = l;
    } else {
      throw new Error(`the schema says ${column.data.tag}, the batch disagrees`);
    }
  }

  get(i) {
    if (this.nulls !== null && this.nulls[i] !== 0) return null;
    if (this.list === null) return this.data.get(i);
    const l = this.list;
    return new List(this.data, l.itemNulls, l.offsets[i], l.offsets[i + 1]);
  }

  // Every row's value (null for a null row), decoded the first time a row reads the column
  // and kept for the batch: a text column is decoded once, not once per cell.
  values() {
    if (this.vals !== null) return this.vals;
    const n = this.n;
    const out = new Array(n);
    if (this.list === null) {
      this.data.fill(out, n);
    } else {
      const l = this.list;
      for (let i = 0; i < n; i++) out[i] = new List(this.data, l.itemNulls, l.offsets[i], l.offsets[i + 1]);
    }
    const nulls = this.nulls;
    if (nulls !== null) for (let i = 0; i < n; i++) if (nulls[i] !== 0) out[i] = null;
    this.vals = out;
    return out;
  }
}

/**
 * One input row. A Row object is reused for every row of a batch: read it during
 * `transform`, do not keep it.
 */
export class Row {
  constructor(schema, batch, cols) {
    this._schema = schema;
    this._batch = batch;
    this._cols = cols;
    /** Index of this row in its batch. */
    this.index = 0;
  }

  _col(col) {
    if (col === null || col === undefined) return undefined;
    if (typeof col === 'string') {
      col = this._schema._lookup(col);
      if (col === null) return undefined;
    }
    return this._cols[col.index];
  }

  /** The cell of `col` (a Col, a column name, or null); null for a null cell or a missing column. */
  get(col) {
    if (col === null || col === undefined) return null;
    let c;
    if (typeof col === 'string') {
      c = this._col(col);
    } else {
      c = this._cols[col.index];
    }
    if (c === undefined) return null;
    const v = c.vals;
    return (v !== null ? v : c.values())[this.index];
  }

  isNull(col) {
    return this.get(col) === null;
  }

  /** The cell of `col`, or throws RowError(`<COLUMN> is null`). */
  require(col) {
    // `get` written out (a call costs more than its work in an interpreter).
    let v = null;
    if (col !== null && col !== undefined) {
      const c = typeof col === 'string' ? this._col(col) : this._cols[col.index];
      if (c !== undefined) v = (c.vals !== null ? c.vals : c.values())[this.index];
    }
    if (v === null) {
      const name = typeof col === 'string' ? col : col ? col.name : '';
      throw new RowError(`${name} is null`);
    }
    return v;
  }

  /** Text or JSON text, else null. */
  getStr(col) {
    const v = this.get(col);
    if (typeof v === 'string') return v;
    if (v instanceof Json) return v.text;
    return null;
  }

  /** A boolean (see asBool), else null. */
  getBool(col) {
    if (col === null || col === undefined) return null;
    const c = typeof col === 'string' ? this._col(col) : this._cols[col.index];
    if (c === undefined) return null;
    const v = (c.vals !== null ? c.vals : c.values())[this.index];
    return typeof v === 'boolean' ? v : asBool(v);
  }

  /** A bigint integer, also from a whole decimal or integer text, else null. */
  getInt(col) {
    return asInt(this.get(col));
  }

  /** A float, else null. */
  getFloat(col) {
    return asFloat(this.get(col));
  }

  /** A Decimal (from a decimal or an integer), else null. */
  getDecimal(col) {
    const v = this.get(col);
    if (v instanceof Decimal) return v;
    if (typeof v === 'bigint') return new Decimal(v, 0);
    return null;
  }

  /** A Timestamp, or a date as midnight, else null. */
  getTimestamp(col) {
    const v = this.get(col);
    if (v instanceof Timestamp) return v;
    if (v instanceof DateValue) return v.toTimestamp();
    return null;
  }

  /** A DateValue (a timestamp's date), else null. */
  getDate(col) {
    const v = this.get(col);
    if (v instanceof DateValue) return v;
    if (v instanceof Timestamp) {
      const [secs] = v.split();
      return new DateValue(Math.floor(Number(secs) / 86400));
    }
    return null;
  }

  /** A JSON cell (or JSON text in a text cell) parsed; undefined when null. Throws on invalid JSON. */
  getJson(col) {
    const v = this.get(col);
    if (v instanceof Json) return v.parse();
    if (typeof v === 'string') return JSON.parse(v);
    return undefined;
  }

  /** Binary (or text/JSON as UTF-8 bytes), else null. */
  getBytes(col) {
    const v = this.get(col);
    if (v instanceof Uint8Array) return v;
    if (typeof v === 'string') return new TextEncoder().encode(v);
    if (v instanceof Json) return new TextEncoder().encode(v.text);
    return null;
  }

  /** A List, else null. */
  getList(col) {
    const v = this.get(col);
    return v instanceof List ? v : null;
  }

  /** Row number within the file (0-based), a number. */
  get rowNumber() {
    return Number(this._batch.firstRow) + this.index;
  }

  /** The object key or path of the file. */
  get fileKey() {
    return this._batch.file.key;
  }

  /** `[[key, value | null]]`: the partition folders of the file's path, in path order. */
  get partitions() {
    return this._batch.file.partitions.map(([k, v]) => [k, v === undefined ? null : v]);
  }

  /** The partition `name` (case-insensitive): undefined when absent, null for a NULL partition. */
  partition(name) {
    const p = this._batch.file.partitions;
    let hit = p.find(([k]) => k === name);
    if (!hit) {
      const lower = name.toLowerCase();
      hit = p.find(([k]) => k.toLowerCase() === lower);
    }
    if (!hit) return undefined;
    return hit[1] === undefined || hit[1] === null ? null : hit[1];
  }

  /** The input columns. */
  get schema() {
    return this._schema;
  }
}

// ---------------------------------------------------------------------------------------
// Output

const ENCODER = new TextEncoder();
const HAS_ENCODE_INTO = typeof ENCODER.encodeInto === 'function';
const TWO32 = 4294967296;

// The output columns of contract 0.2.0 are `list<u8>` of little-endian values. The bindings
// ComponentizeJS generates copy a typed array into a `list<u8>` in one piece (one `set` of
// its bytes) and a plain array element by element, so every column lives in a growable
// typed array and goes back as a Uint8Array view of its used bytes. WebAssembly is
// little-endian, and so are typed arrays here.
//
// The engine (StarlingMonkey, an interpreter) charges about half a microsecond per function
// call and per object made, so the per-entity and per-property paths below are written out
// rather than split into helpers.

// A growable byte column: the payload bytes of the spans.
class U8 {
  constructor(cap = 1024) {
    this.a = new Uint8Array(cap);
    this.n = 0;
  }
  reserve(extra) {
    if (this.n + extra > this.a.length) {
      let cap = this.a.length * 2;
      while (cap < this.n + extra) cap *= 2;
      this.a = grown(this.a, cap);
    }
  }
  // Appends the UTF-8 of s (its span is `start .. this.n`); returns where it starts.
  str(s) {
    const start = this.n;
    const len = s.length;
    if (len === 0) return start;
    if (HAS_ENCODE_INTO) {
      this.reserve(len * 3);
      this.n += ENCODER.encodeInto(s, this.a.subarray(start)).written;
    } else {
      const b = ENCODER.encode(s);
      this.reserve(b.length);
      this.a.set(b, start);
      this.n += b.length;
    }
    return start;
  }
  bytes(b) {
    const start = this.n;
    this.reserve(b.length);
    this.a.set(b, start);
    this.n += b.length;
    return start;
  }
}

// Appends the UTF-8 of s to `bytes`; returns where it starts (the same as `bytes.str(s)`,
// one call less when the buffer has room).
function putStr(bytes, s) {
  const start = bytes.n;
  const a = bytes.a;
  if (HAS_ENCODE_INTO && start + 3 * s.length <= a.length) {
    bytes.n = start + ENCODER.encodeInto(s, a.subarray(start)).written;
    return start;
  }
  return bytes.str(s);
}

function grown(a, cap) {
  const b = new a.constructor(cap);
  b.set(a);
  return b;
}

// Cell kinds (the `kinds` byte of `output.cells`).
const K_NULL = 0;
const K_BOOLEAN = 1;
const K_INTEGER = 2;
const K_FLOAT = 3;
const K_DECIMAL = 4;
const K_TEXT = 5;
const K_JSON = 6;
const K_DATE = 7;
const K_BINARY = 12;
// Timestamps: the kind says the unit.
// (No prototype: a unit such as 'toString' finds nothing.)
const K_TIMESTAMP = Object.assign(Object.create(null), { seconds: 8, millis: 9, micros: 10, nanos: 11 });

// A growable column of cells (its count is kept by the owner): one kind byte and one
// 64-bit word per cell. The words are one buffer seen as u32 pairs (spans, booleans,
// dates: no BigInt), as s64 (BigInt values, stored as they are) and as f64 (floats).
class Cells {
  constructor(cap) {
    this.kinds = new Uint8Array(cap);
    this._views(new Uint32Array(cap * 2));
    this.decimals = []; // `decimal` records, in cell order
  }
  _views(u32) {
    const buf = u32.buffer;
    this.u32 = u32;
    this.i32 = new Int32Array(buf);
    this.i64 = new BigInt64Array(buf);
    this.f64 = new Float64Array(buf);
  }
  grow() {
    const cap = this.kinds.length * 2;
    this.kinds = grown(this.kinds, cap);
    this._views(grown(this.u32, cap * 2));
  }
  // Cells `from .. to` are dropped: so are the decimals only they used.
  drop(from, to) {
    const kinds = this.kinds;
    for (let j = from; j < to; j++) {
      if (kinds[j] === K_DECIMAL) {
        this.decimals.length = this.u32[2 * j]; // the first dropped decimal
        return;
      }
    }
  }
  // The first `n` cells as `output.cells` (views: valid until the next write).
  take(n) {
    const cells = {
      kinds: new Uint8Array(this.kinds.buffer, 0, n),
      words: new Uint8Array(this.u32.buffer, 0, n * 8),
      decimals: this.decimals,
    };
    this.decimals = [];
    return cells;
  }
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Standard base64 with padding. */
export function base64(b) {
  let s = '';
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const n = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    s += B64[(n >> 18) & 63] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
  }
  if (b.length - i === 1) {
    const n = b[i] << 16;
    s += B64[(n >> 18) & 63] + B64[(n >> 12) & 63] + '==';
  } else if (b.length - i === 2) {
    const n = (b[i] << 16) | (b[i + 1] << 8);
    s += B64[(n >> 18) & 63] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + '=';
  }
  return s;
}

function floatText(f) {
  // Rust's `{:?}` of an f64: always a decimal point or an exponent.
  if (Number.isInteger(f) && Math.abs(f) < 1e16) return f.toFixed(1);
  const s = String(f);
  return s.replace('e+', 'e');
}

/** JSON text of a value, as the Rust SDK's json::write_value writes it. */
export function valueJson(v) {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return v.toString();
    case 'number':
      return Number.isFinite(v) ? floatText(v) : 'null';
    case 'string':
      return JSON.stringify(v);
  }
  if (v instanceof Json) return v.text;
  if (v instanceof Decimal) return v.toString();
  if (v instanceof DateValue || v instanceof Timestamp) return '"' + v.toString() + '"';
  if (v instanceof Uint8Array) return '"' + base64(v) + '"';
  if (v instanceof List) return listJson(v);
  return stringify(v);
}

function listJson(l) {
  let s = '[';
  for (let i = 0; i < l.length; i++) {
    if (i > 0) s += ',';
    s += valueJson(l.get(i));
  }
  return s + ']';
}

/** JSON.stringify that writes bigints as numbers (JSON.stringify rejects them). */
export function stringify(value) {
  const marks = [];
  const text = JSON.stringify(value, (_k, v) => {
    if (typeof v === 'bigint') {
      marks.push(v.toString());
      return `\u0000bigint${marks.length - 1}\u0000`;
    }
    return v;
  });
  if (marks.length === 0) return text;
  return text.replace(/"\\u0000bigint(\d+)\\u0000"/g, (_m, i) => marks[Number(i)]);
}

/**
 * Rust's `Display` of an f64 (what the Rust and Python SDKs make of a float id): the
 * shortest digits that round-trip, never an exponent (`1e38` is written out in full,
 * `1e-7` as `0.0000001`), `-0` for negative zero, `NaN`, `inf`, `-inf`.
 */
export function floatDisplay(f) {
  if (Number.isNaN(f)) return 'NaN';
  if (!Number.isFinite(f)) return f > 0 ? 'inf' : '-inf';
  if (Object.is(f, -0)) return '-0';
  const s = String(f);
  const e = s.indexOf('e');
  if (e < 0) return s;
  const neg = s[0] === '-';
  const mantissa = s.slice(neg ? 1 : 0, e);
  const dot = mantissa.indexOf('.');
  const digits = dot < 0 ? mantissa : mantissa.slice(0, dot) + mantissa.slice(dot + 1);
  const point = (dot < 0 ? mantissa.length : dot) + Number(s.slice(e + 1));
  let out;
  if (point <= 0) out = '0.' + '0'.repeat(-point) + digits;
  else if (point >= digits.length) out = digits + '0'.repeat(point - digits.length);
  else out = digits.slice(0, point) + '.' + digits.slice(point);
  return (neg ? '-' : '') + out;
}

function idText(v) {
  if (v === null || v === undefined) throw new RowError('external id is null');
  let s;
  switch (typeof v) {
    case 'string':
      s = v;
      break;
    case 'bigint':
      s = String(v);
      break;
    case 'number':
      s = floatDisplay(v);
      break;
    case 'boolean':
      s = v ? 'true' : 'false';
      break;
    default:
      if (v instanceof Json) s = v.text;
      else if (v instanceof Uint8Array) s = base64(v);
      else if (v instanceof Decimal || v instanceof DateValue || v instanceof Timestamp || v instanceof List) s = v.toString();
      else s = stringify(v);
  }
  if (s.length === 0) throw new RowError('external id is empty');
  return s;
}

/** Where a row's entities go: passed to `transform`. */
export class Out {
  constructor() {
    // Entity columns, all of capacity `_cap` (prop offsets `_cap + 1`): `_n` entities.
    this._n = 0;
    this._cap = 1024;
    this._rowsA = new Uint32Array(this._cap);
    this._typesA = new Uint32Array(this._cap);
    this._idsA = new Uint32Array(2 * this._cap); // offset, len of each external id in `_bytes`
    this._delA = new Uint8Array(this._cap);
    this._ts = new Cells(this._cap);
    this._poA = new Uint32Array(this._cap + 1); // [0] stays 0; finish() writes [e + 1]
    // Property columns, of capacity `_pcap`: `_pn` properties.
    this._pn = 0;
    this._pcap = 4096;
    this._pnamesA = new Uint32Array(this._pcap);
    this._pv = new Cells(this._pcap);
    this._names = [];
    this._nameIds = new Map();
    this._bytes = new U8(64 * 1024);
    // Text -> its span in this batch's bytes (`len * 2^32 + offset`): a repeated value (a
    // country, a status, a name) is encoded once per batch, then every cell shares it.
    this._texts = new Map();
    this._errors = [];
    this._row = 0;
    this._open = null; // the unfinished builder, if any
  }

  /** Entities written so far in this batch. */
  get length() {
    return this._n;
  }

  /**
   * Starts an entity of `entityType` with this external id, written as text (integers and
   * decimals exactly, dates and timestamps as RFC 3339). A null or empty id makes
   * `finish()` throw. An unfinished builder is discarded when the next entity starts.
   */
  entity(entityType, externalId) {
    if (this._open !== null) this._rollback(this._open._entity, this._open._props);
    const e = this._n;
    if (e === this._cap) this._growEntities();
    const b = new EntityBuilder(this, e, this._pn);
    this._open = b;
    let s = externalId;
    if (typeof s !== 'string' || s.length === 0) {
      if (s instanceof Decimal && s.scale === 0) {
        s = s.value.toString(); // the usual NUMBER(38,0) id
      } else {
        try {
          s = idText(s);
        } catch (err) {
          b._err = err;
          s = '';
        }
      }
    }
    const bytes = this._bytes;
    const start = bytes.n;
    if (s.length !== 0) {
      const a = bytes.a;
      if (HAS_ENCODE_INTO && start + 3 * s.length <= a.length) {
        bytes.n = start + ENCODER.encodeInto(s, a.subarray(start)).written;
      } else {
        bytes.str(s);
      }
    }
    this._rowsA[e] = this._row;
    const ids = this._idsA;
    ids[2 * e] = start;
    ids[2 * e + 1] = bytes.n - start;
    let t = this._nameIds.get(entityType);
    if (t === undefined) t = this._intern(entityType);
    this._typesA[e] = t;
    const ts = this._ts;
    ts.kinds[e] = K_NULL;
    ts.u32[2 * e] = 0;
    ts.u32[2 * e + 1] = 0;
    this._delA[e] = 0;
    this._n = e + 1;
    return b;
  }

  /** Starts a tombstone: an entity marked deleted (add a timestamp if known, no properties). */
  tombstone(entityType, externalId) {
    return this.entity(entityType, externalId).deleted(true);
  }

  _growEntities() {
    const cap = this._cap * 2;
    this._rowsA = grown(this._rowsA, cap);
    this._typesA = grown(this._typesA, cap);
    this._idsA = grown(this._idsA, 2 * cap);
    this._delA = grown(this._delA, cap);
    this._ts.grow();
    this._poA = grown(this._poA, cap + 1);
    this._cap = cap;
  }

  _growProps() {
    const cap = this._pcap * 2;
    this._pnamesA = grown(this._pnamesA, cap);
    this._pv.grow();
    this._pcap = cap;
  }

  _intern(name) {
    let id = this._nameIds.get(name);
    if (id === undefined) {
      id = this._names.length;
      this._names.push(name);
      this._nameIds.set(name, id);
    }
    return id;
  }

  // Drops the entities from index `e` on and the properties from index `p` on. Their bytes
  // stay (unreferenced): cached text spans may point into them.
  _rollback(e, p) {
    if (p < this._pn) this._pv.drop(p, this._pn);
    this._n = e;
    this._pn = p;
    this._open = null;
  }

  // Writes text `s` (not cached yet) into cell `i` of `c` as `kind`, and caches its span.
  _newText(c, i, s, kind) {
    const bytes = this._bytes;
    const start = bytes.n;
    const a = bytes.a;
    if (HAS_ENCODE_INTO && start + 3 * s.length <= a.length) {
      bytes.n = start + ENCODER.encodeInto(s, a.subarray(start)).written;
    } else {
      bytes.str(s);
    }
    const len = bytes.n - start;
    c.kinds[i] = kind;
    c.u32[2 * i] = start;
    c.u32[2 * i + 1] = len;
    // `len * 2^32 + start` is exact below 2^53: texts of 2 MiB and more are not cached.
    if (len < 0x200000) this._texts.set(s, len * TWO32 + start);
  }

  // Writes a span of `_bytes` from `start` to its end into cell `i` of `c` as `kind`.
  _span(c, i, kind, start) {
    c.kinds[i] = kind;
    c.u32[2 * i] = start;
    c.u32[2 * i + 1] = this._bytes.n - start;
  }

  // Writes value `v` into cell `i` of `c` (throws, writing nothing, for a Timestamp of an
  // unknown unit or a value JSON cannot write).
  _put(c, i, v) {
    const w = 2 * i;
    if (v === null || v === undefined) {
      c.kinds[i] = K_NULL;
      c.u32[w] = 0;
      c.u32[w + 1] = 0;
      return;
    }
    switch (typeof v) {
      case 'string': {
        const span = this._texts.get(v);
        if (span === undefined) {
          this._newText(c, i, v, K_TEXT);
        } else {
          const lo = span % TWO32;
          c.kinds[i] = K_TEXT;
          c.u32[w] = lo;
          c.u32[w + 1] = (span - lo) / TWO32;
        }
        return;
      }
      case 'boolean':
        c.kinds[i] = K_BOOLEAN;
        c.u32[w] = v ? 1 : 0;
        c.u32[w + 1] = 0;
        return;
      case 'bigint':
        if (v >= I64_MIN && v <= I64_MAX) {
          c.kinds[i] = K_INTEGER;
          c.i64[i] = v;
        } else {
          this._decimal(c, i, v, 0);
        }
        return;
      case 'number':
        c.kinds[i] = K_FLOAT;
        c.f64[i] = v;
        return;
    }
    if (v instanceof Timestamp) {
      const kind = K_TIMESTAMP[v.unit];
      if (kind === undefined) throw new Error(`timestamp unit '${v.unit}' is not seconds, millis, micros or nanos`);
      const value = v.value;
      // Stored modulo 2^64, as the bindings of contract 0.1.0 did.
      c.i64[i] = typeof value === 'bigint' ? value : BigInt(value);
      c.kinds[i] = kind;
      return;
    }
    if (v instanceof Decimal) {
      this._decimal(c, i, v.value, v.scale);
    } else if (v instanceof Json) {
      this._span(c, i, K_JSON, putStr(this._bytes, v.text));
    } else if (v instanceof DateValue) {
      c.kinds[i] = K_DATE;
      c.i32[w] = v.days;
      c.i32[w + 1] = v.days < 0 ? -1 : 0;
    } else if (v instanceof Uint8Array) {
      this._span(c, i, K_BINARY, this._bytes.bytes(v));
    } else if (v instanceof List) {
      this._span(c, i, K_JSON, putStr(this._bytes, listJson(v)));
    } else {
      this._span(c, i, K_JSON, putStr(this._bytes, stringify(v)));
    }
  }

  _decimal(c, i, value, scale) {
    const d = decimalWit(value, scale);
    c.kinds[i] = K_DECIMAL;
    c.u32[2 * i] = c.decimals.length;
    c.u32[2 * i + 1] = 0;
    c.decimals.push(d);
  }

  // Adds a property (a null value too).
  _pushProp(name, v) {
    const p = this._pn;
    if (p === this._pcap) this._growProps();
    this._put(this._pv, p, v);
    let id = this._nameIds.get(name);
    if (id === undefined) id = this._intern(name);
    this._pnamesA[p] = id;
    this._pn = p + 1;
  }

  _take() {
    if (this._open !== null) this._rollback(this._open._entity, this._open._props);
    const n = this._n;
    const pn = this._pn;
    // Views, valid until the next batch writes: the bindings copy them as soon as
    // `transform` returns.
    const entities = {
      count: n,
      rows: new Uint8Array(this._rowsA.buffer, 0, 4 * n),
      entityTypes: new Uint8Array(this._typesA.buffer, 0, 4 * n),
      deleted: new Uint8Array(this._delA.buffer, 0, n),
      externalIds: new Uint8Array(this._idsA.buffer, 0, 8 * n),
      timestamps: this._ts.take(n),
      propOffsets: new Uint8Array(this._poA.buffer, 0, 4 * (n + 1)),
      propNames: new Uint8Array(this._pnamesA.buffer, 0, 4 * pn),
      propValues: this._pv.take(pn),
      names: this._names,
      bytes: new Uint8Array(this._bytes.a.buffer, 0, this._bytes.n),
    };
    const errors = this._errors;
    this._n = 0;
    this._pn = 0;
    this._bytes.n = 0;
    this._names = [];
    this._nameIds = new Map();
    this._texts = new Map();
    this._errors = [];
    return { entities, errors };
  }
}

function decimalWit(value, scale) {
  return { lo: BigInt.asUintN(64, value), hi: BigInt.asIntN(64, value >> 64n), scale };
}

/** Builds one entity (from `out.entity` / `out.tombstone`); `finish()` commits it. */
export class EntityBuilder {
  constructor(out, entity, props) {
    this._out = out;
    this._entity = entity; // index of the entity in the batch's output
    this._props = props; // index of its first property
    this._err = null;
  }

  _check() {
    if (this._out._open !== this) throw new Error('entity builder used after it finished or another entity started');
  }

  /** Sets the entity's timestamp: a Timestamp or a DateValue; null means none. */
  timestamp(v) {
    const out = this._out;
    if (out._open !== this) this._check();
    if (v instanceof Timestamp) {
      const kind = K_TIMESTAMP[v.unit];
      if (kind !== undefined && typeof v.value === 'bigint') {
        const ts = out._ts;
        ts.i64[this._entity] = v.value;
        ts.kinds[this._entity] = kind;
        return this;
      }
    }
    if (v === null || v === undefined || v instanceof Timestamp || v instanceof DateValue) {
      out._put(out._ts, this._entity, v);
    } else if (this._err === null) {
      this._err = new RowError(`entity timestamp must be a date or a timestamp, not ${kind(v)}`);
    }
    return this;
  }

  /** Marks the entity deleted (a tombstone) or not. */
  deleted(flag = true) {
    const out = this._out;
    if (out._open !== this) this._check();
    out._delA[this._entity] = flag ? 1 : 0;
    return this;
  }

  /** Adds property `name` — unless the value is null: null properties are omitted. */
  prop(name, value) {
    const out = this._out;
    if (out._open !== this) this._check();
    if (value === null || value === undefined) return this;
    const p = out._pn;
    if (p === out._pcap) out._growProps();
    const c = out._pv;
    // The usual values (text, timestamps, booleans) are written here: a call costs more
    // than the work.
    if (typeof value === 'string') {
      const span = out._texts.get(value);
      if (span === undefined) {
        out._newText(c, p, value, K_TEXT);
      } else {
        const lo = span % TWO32;
        c.kinds[p] = K_TEXT;
        c.u32[2 * p] = lo;
        c.u32[2 * p + 1] = (span - lo) / TWO32;
      }
    } else if (typeof value === 'boolean') {
      c.kinds[p] = K_BOOLEAN;
      c.u32[2 * p] = value ? 1 : 0;
      c.u32[2 * p + 1] = 0;
    } else if (value instanceof Timestamp) {
      const k = K_TIMESTAMP[value.unit];
      if (k !== undefined && typeof value.value === 'bigint') {
        c.i64[p] = value.value;
        c.kinds[p] = k;
      } else {
        out._put(c, p, value);
      }
    } else {
      out._put(c, p, value);
    }
    let id = out._nameIds.get(name);
    if (id === undefined) id = out._intern(name);
    out._pnamesA[p] = id;
    out._pn = p + 1;
    return this;
  }

  /** Adds property `name`, sending a null as an explicit null. */
  propOrNull(name, value) {
    this._check();
    this._out._pushProp(name, value);
    return this;
  }

  /** Adds property `name` with an explicit null. */
  propNull(name) {
    return this.propOrNull(name, null);
  }

  /** Adds a text property (omitted when null). */
  propStr(name, value) {
    return this.prop(name, value === null || value === undefined ? null : String(value));
  }

  /** Adds a JSON property: JSON text (a string) embedded as is, or any other value serialised (omitted when null). */
  propJson(name, value) {
    if (value === null || value === undefined) return this.prop(name, null);
    return this.prop(name, value instanceof Json ? value : new Json(typeof value === 'string' ? value : stringify(value)));
  }

  /** Adds a boolean property (omitted when null). */
  propBool(name, value) {
    return this.prop(name, value === null || value === undefined ? null : !!value);
  }

  /** Adds an integer property (a bigint or a whole number; omitted when null). */
  propInt(name, value) {
    return this.prop(name, value === null || value === undefined ? null : BigInt(value));
  }

  /** Adds a float property (omitted when null). */
  propFloat(name, value) {
    return this.prop(name, value === null || value === undefined ? null : Number(value));
  }

  /** Adds a text property lower-cased (as Rust's `str::to_lowercase`); other values as `prop` would; nulls omitted. */
  propLowercase(name, value) {
    return this.prop(name, typeof value === 'string' ? lowercase(value) : value);
  }

  /** Commits the entity; throws RowError (a null or empty id, a wrong timestamp) and discards it. */
  finish() {
    const out = this._out;
    if (out._open !== this) this._check();
    if (this._err !== null) {
      const e = this._err;
      out._rollback(this._entity, this._props);
      throw e;
    }
    out._poA[this._entity + 1] = out._pn;
    out._open = null;
  }
}

// ---------------------------------------------------------------------------------------
// The runtime: the contract's exports over a plugin class

// The engine ran out of memory (SpiderMonkey throws the string "out of memory"): not the
// row's fault. Rethrown, it traps the instance; the host then rebuilds it and runs the
// batch again on a fresh heap instead of rejecting a good row.
function isEngineFault(e) {
  return e === 'out of memory' || (typeof InternalError !== 'undefined' && e instanceof InternalError);
}

function errorText(e) {
  if (e instanceof RowError) return e.message;
  if (e instanceof Error) {
    const text = e.name && e.name !== 'Error' ? `${e.name}: ${e.message}` : e.message;
    const where = errorWhere(e);
    return where ? `${text} (at ${where})` : text;
  }
  return String(e);
}

// Where an error was thrown, from the innermost frame of its stack (SpiderMonkey's
// `fn@file:line:column`): `file:line in fn`, or '' when the stack says nothing.
function errorWhere(e) {
  const stack = typeof e.stack === 'string' ? e.stack : '';
  for (const frame of stack.split('\n')) {
    const m = /^(.*)@(.*):(\d+):\d+$/.exec(frame.trim());
    if (!m) continue;
    const file = m[2].split('/').pop();
    return m[1] ? `${file}:${m[3]} in ${m[1]}` : `${file}:${m[3]}`;
  }
  return '';
}

// Checks a batch against the schema and the columns sent; a malformed batch is an error.
function columnViews(schema, sent, batch) {
  const n = batch.rowCount;
  if (batch.columns.length !== sent.length) {
    throw new Error(`${batch.columns.length} columns, expected ${sent.length}`);
  }
  const cols = new Array(schema.length);
  for (let k = 0; k < sent.length; k++) {
    const def = schema._columns[sent[k]];
    if (!def) throw new Error('column index out of range');
    try {
      cols[sent[k]] = new ColView(def.type, batch.columns[k], n);
    } catch (e) {
      throw new Error(`column ${def.name}: ${e.message}`);
    }
  }
  return cols;
}

/**
 * The component's `plugin` export for a plugin class `P` with static `describe()` (an Info),
 * static `init(schema, config)` (the plugin instance; throw to refuse) and a
 * `transform(row, out)` method: `export const plugin = exportPlugin(P);`.
 */
export function exportPlugin(P) {
  let state = null; // { plugin, schema, sent, out }
  return {
    describe() {
      return P.describe()._toWit();
    },

    init(columns, config) {
      state = null;
      let plugin;
      let schema;
      try {
        const cfg = Config._checked(P.describe(), config);
        schema = new Schema(columns);
        plugin = P.init(schema, cfg);
      } catch (e) {
        throw { payload: errorText(e) };
      }
      const projection = schema._projection();
      const sent = projection ? Array.from(projection) : columns.map((_c, i) => i);
      state = { plugin, schema, sent, out: new Out() };
      return { columns: projection };
    },

    transform(batch) {
      const n = batch.rowCount;
      if (state === null) {
        const out = new Out();
        for (let i = 0; i < n; i++) out._errors.push({ row: i, message: 'transform called before a successful init' });
        return out._take();
      }
      const { plugin, schema, sent, out } = state;
      let cols;
      try {
        cols = columnViews(schema, sent, batch);
      } catch (e) {
        const message = `malformed batch from the host: ${e.message}`;
        for (let i = 0; i < n; i++) out._errors.push({ row: i, message });
        return out._take();
      }
      const row = new Row(schema, batch, cols);
      for (let i = 0; i < n; i++) {
        row.index = i;
        out._row = i;
        const entities = out._n;
        const props = out._pn;
        try {
          plugin.transform(row, out);
          if (out._open !== null) out._rollback(out._open._entity, out._open._props);
        } catch (e) {
          if (isEngineFault(e)) throw e;
          out._rollback(entities, props);
          out._errors.push({ row: i, message: errorText(e) });
        }
      }
      return out._take();
    },
  };
}
