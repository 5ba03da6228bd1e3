"""The seed guide's stored-procedure pattern, as the baseline of `cargo xtask bench run`.

pyarrow rows -> the same Customer mapping as plugins/customer-rust -> json.dumps(default=str)
-> gzip -> requests.post per 1,000 rows. Prints one JSON line: rows, records sent (each
request answered 2xx, any other answer stops the run), bytes sent (gzipped bodies), wall and
CPU seconds, peak RSS.
"""

import glob
import gzip
import json
import os
import resource
import sys
import time

import pyarrow.parquet as pq
import requests

BATCH_ROWS = 1000


def record(row):
    rec = {"externalId": str(row["CUSTOMER_ID"]), "type": "Customer", "timestamp": row["UPDATED_AT"]}
    if row.get("IS_DELETED"):
        rec["properties"] = {}
        rec["deleted"] = True
        return rec
    props = {}
    for key, column in (("name", "NAME"), ("country", "COUNTRY")):
        if row[column] is not None:
            props[key] = row[column]
    if row["EMAIL"] is not None:
        props["email"] = row["EMAIL"].strip().lower()
    if row["IS_ACTIVE"] is not None:
        props["isActive"] = row["IS_ACTIVE"]
    props["updatedAt"] = row["UPDATED_AT"]
    rec["properties"] = props
    return rec


def main(stage, endpoint, token, level):
    wall0, cpu0 = time.time(), time.process_time()
    session = requests.Session()
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    batch, rows = [], 0
    sent = {"records": 0, "bytes": 0}

    def flush():
        body = gzip.compress(json.dumps(batch, default=str).encode("utf-8"), compresslevel=level)
        session.post(endpoint, data=body, headers=headers).raise_for_status()
        sent["records"] += len(batch)
        sent["bytes"] += len(body)
        batch.clear()

    for path in sorted(glob.glob(os.path.join(stage, "*.parquet"))):
        for row in pq.read_table(path).to_pylist():
            rows += 1
            if row["CUSTOMER_ID"] is None:
                continue
            batch.append(record(row))
            if len(batch) == BATCH_ROWS:
                flush()
    if batch:
        flush()
    print(json.dumps({
        "rows": rows,
        "records": sent["records"],
        "bytes_sent": sent["bytes"],
        "wall_seconds": time.time() - wall0,
        "cpu_seconds": time.process_time() - cpu0,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], os.environ["SEED_TOKEN"], int(sys.argv[3]))
