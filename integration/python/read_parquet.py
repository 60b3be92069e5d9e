"""Reads muon's Parquet archives with pyarrow, as another program would, and
prints what it saw as one JSON object on stdout, for integration/parquet_test.go
to compare with what muon wrote:

    read_parquet.py FEATURES_ROOT READINGS_ROOT

Each root is read with pyarrow.dataset and Hive partitioning. Floats are
printed as the 16 hex digits of their IEEE 754 bits (NaN payloads, -0 and
±Inf included) and times as int64 milliseconds, so that nothing is rounded
on the way and times outside Python's datetime range still print.
"""

import json
import struct
import sys

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq


def bits(x):
    return format(struct.unpack("<Q", struct.pack("<d", x))[0], "016x")


def read(root):
    d = ds.dataset(root, format="parquet", partitioning="hive")
    t = d.to_table()
    # Timestamps as their int64 milliseconds: exact, and no datetime range.
    t = t.set_column(t.schema.get_field_index("time"), "time", t.column("time").cast(pa.int64()))
    rows = t.to_pylist()
    for r in rows:
        if "features" in r:
            r["features"] = [bits(v) for v in r["features"]]
        if "values" in r:
            r["values"] = [[v["name"], bits(v["value"])] for v in r["values"]]
    files = []
    for f in sorted(d.files):
        md = pq.ParquetFile(f).metadata
        files.append({
            "path": f,
            "rows": md.num_rows,
            "row_groups": md.num_row_groups,
            "metadata": {k.decode(): v.decode() for k, v in (md.metadata or {}).items()},
            "compression": sorted({md.row_group(i).column(j).compression
                                   for i in range(md.num_row_groups) for j in range(md.num_columns)}),
        })
    return {
        "schema": {f.name: str(f.type) for f in d.schema},
        "nullable": {f.name: f.nullable for f in d.schema},
        "files": files,
        "rows": rows,
    }


def main():
    features, readings = sys.argv[1:3]
    json.dump({
        "pyarrow": pa.__version__,
        "features": read(features),
        "readings": read(readings),
    }, sys.stdout)


if __name__ == "__main__":
    main()
