"""The DuckDB peer of `cargo xtask bench run`: what a few lines of DuckDB and Python do.

DuckDB reads the stage's Parquet files and SQL shapes every row into the same CluedIn
record JSON the customer-rust plugin writes (same keys, order, timestamps and null
handling); Python frames 1,000 records per request as a JSON array (stagepush's default
body), gzips each body at the given level (zlib) and POSTs it on 4 connections (threads,
one `requests.Session` each) to the endpoint. A record counts only when its request was
answered 2xx with `"success": true`; any other answer stops the run with exit 1.

Usage: duckdb_peer.py STAGE ENDPOINT GZIP_LEVEL [--dump FILE]  (token in $PEER_TOKEN).
`--dump FILE` writes the records as NDJSON instead of sending them (to compare with
`stagepush plugin test`). Prints one JSON line: rows, records, requests, bytes_sent
(gzipped bodies), wall and CPU seconds (process and children), peak RSS.
"""

import gzip
import json
import os
import resource
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import duckdb
import requests

BATCH_ROWS = 1000
CONNECTIONS = 4
# Bodies waiting for a connection at most: bounds memory like stagepush's queue.
MAX_PENDING = 2 * CONNECTIONS

# The customer plugin's mapping (plugins/customer-rust): a null id is a row error (left
# out here), null properties are omitted, `IS_DELETED = true` gives a tombstone.
RECORDS_SQL = """
SELECT '{' || concat_ws(',',
    '"externalId":' || to_json(CAST(CUSTOMER_ID AS VARCHAR)),
    '"type":"Customer"',
    '"timestamp":' || to_json(strftime(UPDATED_AT, '%Y-%m-%dT%H:%M:%S.%gZ')),
    '"properties":{' || CASE WHEN coalesce(IS_DELETED, false) THEN '' ELSE concat_ws(',',
        '"name":' || to_json(NAME),
        '"country":' || to_json(COUNTRY),
        '"email":' || to_json(lower(trim(EMAIL))),
        '"isActive":' || to_json(IS_ACTIVE),
        '"updatedAt":' || to_json(strftime(UPDATED_AT, '%Y-%m-%dT%H:%M:%S.%gZ'))
    ) END || '}',
    CASE WHEN IS_DELETED THEN '"deleted":true' END
) || '}'
FROM read_parquet(?)
WHERE CUSTOMER_ID IS NOT NULL
"""


def cpu_seconds():
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def record_batches(con, stage):
    """Yields lists of at most BATCH_ROWS record JSON texts, in file and row order."""
    glob = os.path.join(stage, "*.parquet")
    reader = con.sql(RECORDS_SQL, params=[glob]).to_arrow_reader(BATCH_ROWS * 16)
    pending = []
    for batch in reader:
        pending.extend(batch.column(0).to_pylist())
        while len(pending) >= BATCH_ROWS:
            yield pending[:BATCH_ROWS]
            del pending[:BATCH_ROWS]
    if pending:
        yield pending


def bodies(con, stage):
    """Yields (JSON array body, record count) per BATCH_ROWS records."""
    for records in record_batches(con, stage):
        yield ("[" + ",".join(records) + "]").encode("utf-8"), len(records)


def main():
    args = sys.argv[1:]
    dump = None
    if "--dump" in args:
        i = args.index("--dump")
        dump = args[i + 1]
        del args[i : i + 2]
    stage, endpoint, level = args[0], args[1], int(args[2])
    wall0 = time.time()
    con = duckdb.connect()
    if dump is not None:
        with open(dump, "w", encoding="utf-8") as out:
            for records in record_batches(con, stage):
                out.writelines(record + "\n" for record in records)
        return

    headers = {
        "Authorization": f"Bearer {os.environ['PEER_TOKEN']}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    local = threading.local()

    def post(body, records):
        """gzip (zlib releases the GIL) and POST one body; returns (records, bytes)."""
        wire = gzip.compress(body, compresslevel=level, mtime=0)
        if not hasattr(local, "session"):
            local.session = requests.Session()
        resp = local.session.post(endpoint, data=wire, headers=headers)
        if resp.status_code // 100 != 2 or resp.json().get("success") is not True:
            raise RuntimeError(f"endpoint answered {resp.status_code}: {resp.text[:200]}")
        return records, len(wire)

    records = sent = requests_made = 0
    slots = threading.Semaphore(CONNECTIONS + MAX_PENDING)
    futures = []
    with ThreadPoolExecutor(max_workers=CONNECTIONS) as pool:

        def release(_):
            slots.release()

        for body, n in bodies(con, stage):
            slots.acquire()
            future = pool.submit(post, body, n)
            future.add_done_callback(release)
            futures.append(future)
            # Collect finished requests as we go (a failure stops the run here).
            while futures and futures[0].done():
                r, b = futures.pop(0).result()
                records, sent, requests_made = records + r, sent + b, requests_made + 1
        for future in futures:
            r, b = future.result()
            records, sent, requests_made = records + r, sent + b, requests_made + 1

    (rows,) = con.execute(
        "SELECT sum(num_rows) FROM parquet_file_metadata(?)", [os.path.join(stage, "*.parquet")]
    ).fetchone()
    print(json.dumps({
        "rows": int(rows),
        "records": records,
        "requests": requests_made,
        "bytes_sent": sent,
        "wall_seconds": time.time() - wall0,
        "cpu_seconds": cpu_seconds(),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - one clear line and exit 1, no traceback noise
        print(f"duckdb_peer: {e}", file=sys.stderr)
        sys.exit(1)
