"""Scale benchmark (issue 25): an NIH-sized study end to end, and kNN at a million rows.

    python benchmarks/scale.py              # 112,120 and 28,030 rows; kNN at 1,000,000 x 768 (long)
    python benchmarks/scale.py --small      # 11,212 and 2,803 rows; kNN at 100,000 x 768
    python benchmarks/scale.py --dry-run    # tiny sizes: checks that every step runs through

**Study.** A synthetic NIH ChestX-ray14 in NIH's native layout (``Data_Entry_2017.csv``,
``images_001..012/images/*.png``, ``train_val_list.txt``, ``test_list.txt``; ~3.6 images a
patient, the 14 findings at NIH's prevalences, tiny 16 px images carrying a planted signal)
goes through ``featx extract`` (a tiny random ViT at 28 px), ``featx probe`` (kNN and the
linear grid, the default protocol) and ``featx report``, each stage its own process. For each
of two sizes it prints seconds per row of each stage and the stage's peak RSS (the child's
``ru_maxrss``), then the growth ratio (time per row at the large size / at the small one:
1.0 is linear scaling).

**kNN.** Exact inner-product search (faiss ``IndexFlatIP``) against the approximate indexes
of featx.probes.ann (IVF-Flat trained on the train rows, HNSW) on clustered unit vectors
(like embeddings, not uniform noise): build and search time, and recall@k against exact.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from dry_run import add_dry_run  # benchmarks/dry_run.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from featx.probes import ann  # noqa: E402

NIH_ROWS, NIH_PATIENTS = 112_120, 30_805
FINDINGS = ["Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
            "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia"]
PREVALENCE = [0.103, 0.025, 0.119, 0.177, 0.052, 0.056, 0.013, 0.047, 0.042, 0.021, 0.022, 0.015, 0.030, 0.002]
HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
          "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],")
TINY_VIT = {"depth": 2, "embed_dim": 32, "num_heads": 2}
SIZES = {"full": (NIH_ROWS, NIH_ROWS // 4), "small": (NIH_ROWS // 10, NIH_ROWS // 40), "dry": (800, 200)}
KNN = {"full": (1_000_000, 768, 10_000), "small": (100_000, 768, 2_000), "dry": (20_000, 64, 500)}


def make_nih(root: Path, rows: int, seed: int = 0, image_px: int = 16) -> Path:
    """NIH ChestX-ray14's layout with ``rows`` images of NIH's patients-per-image ratio; returns the folder."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    patients = max(4, round(rows * NIH_PATIENTS / NIH_ROWS))
    patient = np.sort(rng.integers(1, patients + 1, rows))
    labels = rng.random((rows, len(FINDINGS))) < np.array(PREVALENCE)
    lines, trainval, test = [HEADER], [], []
    per_folder = -(-rows // 12)
    follow = np.zeros(patients + 2, int)
    for row in range(rows):
        p = int(patient[row])
        name = f"{p:08d}_{follow[p]:03d}.png"
        follow[p] += 1
        image = rng.uniform(0, 60, (image_px, image_px))
        for c in np.flatnonzero(labels[row]):  # a bright pixel block per finding: something to probe
            y, x = divmod(int(c), 4)
            image[y * 4 : y * 4 + 3, x * 4 : x * 4 + 3] += 150
        folder = root / f"images_{row // per_folder + 1:03d}" / "images"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / name)
        found = "|".join(f for f, on in zip(FINDINGS, labels[row]) if on) or "No Finding"
        lines.append(f"{name},{found},{follow[p] - 1},{p},{40 + p % 50},{'M' if p % 2 else 'F'},PA,"
                     f"{image_px},{image_px},0.143,0.143,")
        (test if p > patients * 0.77 else trainval).append(name)  # NIH: ~23% of the images are official test
    (root / "Data_Entry_2017.csv").write_text("\n".join(lines) + "\n")
    (root / "train_val_list.txt").write_text("\n".join(trainval) + "\n")
    (root / "test_list.txt").write_text("\n".join(test) + "\n")
    return root


def stage(args: list[str]) -> tuple[float, float]:
    """Run ``featx ARGS`` in its own process: (seconds, peak RSS in MiB)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "featx", *args], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    errors = process.stderr.read()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 3):
        raise SystemExit(f"featx {' '.join(args[:1])} failed ({process.returncode}): {errors[-2000:]}")
    return seconds, usage.ru_maxrss / 1024  # Linux: KiB


def study(rows: int, workdir: Path, workers: int) -> dict[str, tuple[float, float]]:
    """Extract, probe and report a synthetic NIH of ``rows`` rows: {stage: (seconds, peak RSS MiB)}."""
    root, cache, results = workdir / "nih", workdir / "cache", workdir / "results.jsonl"
    started = time.perf_counter()
    make_nih(root, rows)
    out = {"make data": (time.perf_counter() - started, 0.0)}  # in this process: no RSS of its own
    overrides = [f"--model-override={k}={v}" for k, v in TINY_VIT.items()]
    out["extract"] = stage(["extract", "--dataset", "nih_chestxray14", "--root", str(root), "--backbone",
                            "dinov2_vits14", "--size", "28", "--cache", str(cache), "--random-init", "--n-last", "2",
                            "--batch-size", "256", "--workers", str(workers), *overrides])
    out["probe"] = stage(["probe", "--cache", str(cache), "--dataset", "nih_chestxray14", "--backbone", "dinov2_vits14",
                          "--setting", "knn", "--setting", "linear", "--out", str(results)])
    out["report"] = stage(["report", str(results), "--out", str(workdir / "report")])
    return out


def clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors around ``n // 1000`` centres (float32)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(8, n // 1000), dim)).astype(np.float32)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        block = centres[rng.integers(0, len(centres), stop - start)]
        block += rng.normal(0, 0.5, block.shape).astype(np.float32) * np.sqrt(2 / dim) * 4
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def knn_bench(n: int, dim: int, n_queries: int, k: int, kinds: list[str]) -> list[tuple[str, float, float, float]]:
    """(method, build s, search s, recall@k) for exact search and each approximate index."""
    import faiss

    data = clustered(n + n_queries, dim)
    bank, queries = data[:n], data[n:]
    is_train = np.zeros(n, bool)
    is_train[: int(n * 0.8)] = True
    started = time.perf_counter()
    exact = faiss.IndexFlatIP(dim)
    exact.add(bank)
    built = time.perf_counter() - started
    started = time.perf_counter()
    _, truth = exact.search(queries, k)
    rows = [("exact (IndexFlatIP)", built, time.perf_counter() - started, 1.0)]
    del exact
    for kind in kinds:
        spec = ann.ApproxIndex(kind)
        started = time.perf_counter()
        index = ann.build_or_load(spec, bank, is_train)
        built = time.perf_counter() - started
        started = time.perf_counter()
        _, found = index.search(queries, k)
        rows.append((index.describe(), built, time.perf_counter() - started, ann.recall_at_k(found, truth)))
        del index
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="~10x smaller study, kNN at 100,000 rows")
    add_dry_run(parser)
    parser.add_argument("--skip-study", action="store_true", help="only the kNN comparison")
    parser.add_argument("--skip-knn", action="store_true", help="only the study")
    parser.add_argument("--indexes", nargs="+", default=list(ann.INDEX_KINDS), choices=ann.INDEX_KINDS)
    parser.add_argument("--k", type=int, default=20, help="neighbours (recall@k)")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="extract's decode workers")
    parser.add_argument("--workdir", type=Path, default=None, help="where the data and caches go (default: a temp dir)")
    args = parser.parse_args()
    size = "dry" if args.dry_run else "small" if args.small else "full"
    print(f"# scale benchmark ({size}): {platform.node()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    if not args.skip_study:
        large, small = SIZES[size]
        timings = {}
        for rows in (small, large):
            with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
                timings[rows] = study(rows, Path(folder), args.workers)
        print("\n## study: synthetic NIH ChestX-ray14 (native layout), tiny ViT at 28 px\n")
        print(f"| stage | {small:,} rows: ms/row | peak RSS MiB | {large:,} rows: ms/row | peak RSS MiB | growth |")
        print("|---|---|---|---|---|---|")
        for name in timings[large]:
            (ts, rs), (tl, rl) = timings[small][name], timings[large][name]
            per_small, per_large = 1000 * ts / small, 1000 * tl / large
            rss = [f"{r:.0f}" if r else "-" for r in (rs, rl)]
            print(f"| {name} | {per_small:.3f} | {rss[0]} | {per_large:.3f} | {rss[1]} | {per_large / per_small:.2f} |")
    if not args.skip_knn:
        n, dim, n_queries = KNN[size]
        print(f"\n## kNN: {n:,} x {dim} bank, {n_queries:,} queries, k={args.k}\n")
        print("| method | build s | search s | ms/query | recall@k |")
        print("|---|---|---|---|---|")
        for method, built, searched, recall in knn_bench(n, dim, n_queries, args.k, args.indexes):
            print(f"| {method} | {built:.1f} | {searched:.2f} | {1000 * searched / n_queries:.3f} | {recall:.4f} |")


if __name__ == "__main__":
    main()
