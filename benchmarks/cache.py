"""What crc32c checksums on every chunk cost, on write and on read, in one run.

    python benchmarks/cache.py                       # 65536 rows x 1024 float16 (128 MiB), blocks of 1024
    python benchmarks/cache.py --rows 262144 --dim 1536

Writes the same float16 feature matrix into two Zarr arrays laid out like a store's
pooled arrays (chunk = one block of rows), one with featx's codecs (zstd + crc32c)
and one without the checksum, then reads each back; repeats (interleaved) and keeps
the best time of each. Prints MB/s and the ratio checksummed / plain for write and read.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

from featx.cache.store import create_array


def timed(run) -> float:
    """Seconds one call of ``run`` takes."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=65536)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--block", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    features = np.random.default_rng(0).normal(size=(args.rows, args.dim)).astype(np.float16)
    mib = features.nbytes / 2**20
    with tempfile.TemporaryDirectory() as tmp:
        arrays = {}
        for checksums in (False, True):
            group = zarr.open_group(str(Path(tmp) / f"crc-{checksums}.zarr"), mode="w-", zarr_format=3)
            arrays[checksums] = create_array(
                group, "pooled", checksums=checksums, shape=features.shape, chunks=(args.block, args.dim),
                dtype=np.float16, fill_value=np.nan,
            )
        times: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for _ in range(args.repeats):  # interleaved, so load on a shared machine hits both alike
            for checksums, array in arrays.items():
                write = timed(lambda array=array: array.__setitem__(slice(None), features))
                read = timed(lambda array=array: np.asarray(array[:]))
                times[checksums].append((write, read))
        for array in arrays.values():
            np.testing.assert_array_equal(np.asarray(array[:]), features)
        seconds = {c: (min(t[0] for t in ts), min(t[1] for t in ts)) for c, ts in times.items()}
    (w0, r0), (w1, r1) = seconds[False], seconds[True]
    print(f"{args.rows} rows x {args.dim} float16 = {mib:.0f} MiB, chunks of {args.block} rows, best of {args.repeats}")
    print(f"write: plain {mib / w0:7.0f} MiB/s  crc32c {mib / w1:7.0f} MiB/s  ratio crc32c/plain time {w1 / w0:.3f}")
    print(f"read:  plain {mib / r0:7.0f} MiB/s  crc32c {mib / r1:7.0f} MiB/s  ratio crc32c/plain time {r1 / r0:.3f}")


if __name__ == "__main__":
    main()
