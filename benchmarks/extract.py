"""Extraction throughput against the same model's forward-only throughput, in one run.

    python benchmarks/extract.py                                  # CPU defaults (small ViT, 112 px)
    python benchmarks/extract.py --device cuda --backbones dinov2_vitl14 --size 224 --n 8192 --batch 256 --workers 14
    python benchmarks/extract.py --png16 256 --rss-sizes 0 0      # + 1024 px 16-bit PNGs: pixel store vs PNGs

Per backbone, same batch size: forward-only images/s (pixels already on the device),
end-to-end extraction from the pixel store (pixel store -> finished feature store;
the pixel store is built once beforehand and not timed here), and from the PNG files
directly (decode -> preprocess -> forward -> store), with the ratios to forward-only and
where the extracting thread's time went. To say which stage caps it, it also prints the
raw-file pipeline with a model that costs nothing, the reader alone and the writer
alone, and the peak host RSS at two dataset sizes (fresh process each). ``--png16 N``
adds the side-by-side on N 1024x1024 16-bit PNGs: building the pixel store (images/s per
core) and then extracting two backbones from it, against extracting the same two
backbones from the PNGs directly. Weights are random (speed does not depend on them).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from dry_run import add_dry_run, shrink  # benchmarks/dry_run.py, beside this script


def _write_png(job: tuple[Path, int, int, int, int]) -> dict[str, int]:
    """Write one X-ray-like PNG (if absent) and return its findings."""
    from PIL import Image

    from featx.demo.data import XRAY_FINDINGS, xray_image

    path, i, size, seed, bits = job
    rng = np.random.default_rng([seed, i])
    findings = {f: bool(rng.random() < 0.4) for f in XRAY_FINDINGS}
    if not path.exists():
        image = xray_image(findings, size, rng)
        Image.fromarray((image * 65535).astype(np.uint16) if bits == 16 else (image * 255).astype(np.uint8)).save(path)
    return {f: int(v) for f, v in findings.items()}


def make_png_dataset(folder: Path, n: int, size: int = 256, seed: int = 0, bits: int = 8) -> Path:
    """n X-ray-like grey PNGs (8-bit 256 px by default) and their CSV, written in parallel, reused across runs."""
    from concurrent.futures import ProcessPoolExecutor

    from featx.demo.data import XRAY_FINDINGS

    images = "images" if (size, bits) == (256, 8) else f"images_{size}px_{bits}bit"
    (folder / images).mkdir(parents=True, exist_ok=True)
    jobs = [(folder / images / f"{i:06d}.png", i, size, seed, bits) for i in range(n)]
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        findings = list(pool.map(_write_png, jobs, chunksize=16))
    lines = ["path,patient_id,split," + ",".join(XRAY_FINDINGS)]
    for i, found in enumerate(findings):
        split = ("train", "train", "train", "val", "test")[i % 5]
        lines.append(f"{images}/{i:06d}.png,P{i},{split}," + ",".join(str(found[f]) for f in XRAY_FINDINGS))
    csv = folder / (f"bench_{n}.csv" if images == "images" else f"bench_{n}_{size}px_{bits}bit.csv")
    csv.write_text("\n".join(lines) + "\n")
    return csv


def load(args: argparse.Namespace, name: str | None = None):
    from featx.backbones import load_backbone

    overrides = json.loads(args.model_overrides) if args.model_overrides else None
    return load_backbone(name or args.backbones[0], img_size=args.size, random_init=True, model_overrides=overrides)


def forward_only(args: argparse.Namespace, backbone, n_batches: int) -> float:
    """Images/s of the bare forward pass on device-resident inputs (the ceiling for extraction)."""
    import contextlib

    import torch

    device = torch.device(args.device)
    model = backbone.model.to(device).eval()
    x = torch.rand(args.batch, 3, args.size, args.size, device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        for _ in range(2):
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(n_batches):
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return n_batches * args.batch / (time.perf_counter() - start)


def extraction(args: argparse.Namespace, backbone, csv: Path, cache: Path, pixels: bool = False):
    """The ExtractResult of a full `extract` over the CSV into ``cache`` (from its pixel store if ``pixels``)."""
    from featx.datasets import build_index
    from featx.datasets.preprocess import PreprocessConfig
    from featx.pipeline.extract import extract
    from featx.pipeline.pixel_feed import PixelCache

    index = build_index("csv", csv, modality="xray")
    return extract(
        index,
        backbone,
        PreprocessConfig.for_modality("xray", args.size),
        cache,
        device=args.device,
        batch_size=args.batch,
        num_workers=args.workers,
        progress=False,
        pixel_cache=PixelCache(cache, workers=args.decode_workers, progress=False) if pixels else None,
    )


def build_pixels(args: argparse.Namespace, csv: Path, cache: Path):
    """Build the pixel store of the CSV in ``cache`` (all cores unless --decode-workers): its build result."""
    from featx.datasets import build_index
    from featx.datasets.preprocess import PreprocessConfig
    from featx.pipeline.pixel_build import build_pixel_store

    index = build_index("csv", csv, modality="xray")
    return build_pixel_store(index, PreprocessConfig.for_modality("xray", args.size), cache,
                             workers=args.decode_workers, progress=False)


def null_model(backbone, args: argparse.Namespace):
    """A stand-in model that returns zeros shaped like ``backbone``'s outputs at once."""
    import torch

    device = torch.device(args.device)
    with torch.inference_mode():
        probe = backbone.model.to(device).eval()(torch.zeros(1, 3, args.size, args.size, device=device))
    shapes = {layer: {kind: tuple(t.shape[1:]) for kind, t in kinds.items()} for layer, kinds in probe.items()}

    class NullModel(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
            return {layer: {kind: x.new_zeros(x.shape[0], *shape) for kind, shape in kinds.items()}
                    for layer, kinds in shapes.items()}

    return NullModel()


def pipeline_only(args: argparse.Namespace, backbone, csv: Path, cache: Path) -> float:
    """Steady rows/s of the whole extraction with a model that costs nothing: reader, host-to-device,
    packing, device-to-host and writer together, i.e. what the pipeline around the model sustains."""
    import dataclasses

    null = dataclasses.replace(backbone, model=null_model(backbone, args))
    return extraction(args, null, csv, cache).steady_rows_per_second


def reader_only(args: argparse.Namespace, csv: Path) -> float:
    """Rows/s of the reader stage alone: the same DataLoader (workers, batch, pinning), no model."""
    import torch
    from torch.utils.data import DataLoader

    from featx.datasets import build_index
    from featx.datasets.preprocess import PreprocessConfig
    from featx.pipeline.reader import BlockBatchSampler, SampleDataset

    index = build_index("csv", csv, modality="xray")
    loader = DataLoader(
        SampleDataset(index.table, PreprocessConfig.for_modality("xray", args.size), with_masks=False),
        batch_sampler=BlockBatchSampler(range(-(-len(index) // 1024)), 1024, len(index), args.batch),
        num_workers=args.workers,
        pin_memory=args.device.startswith("cuda"),
        prefetch_factor=4 if args.workers else None,
    )
    batches = iter(loader)
    first = next(batches)  # worker start-up is not part of the rate
    start, rows = time.perf_counter(), 0
    for batch in batches:
        rows += len(batch["row"])
        if args.device.startswith("cuda"):
            batch["pixels"].to(args.device, non_blocking=True)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    del first
    return rows / (time.perf_counter() - start)


def writer_only(args: argparse.Namespace, feature_dims: dict[str, int], n: int) -> float:
    """Rows/s of the writer stage alone: whole blocks of random float16 features into a fresh store."""
    import pandas as pd

    from featx.cache import FeatureStore, cache_key
    from featx.datasets.index import SampleIndex
    from featx.pipeline.writer import Batch, BlockWriter

    table = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
                          "split": ["train"] * n, "source": ["-"] * n, "reader": ["image"] * n})
    index = SampleIndex("writer-bench", "binary", "xray", ["a", "b"], table, np.tile([1.0, 0.0], (n, 1)))
    key, inputs = cache_key(dataset="writer-bench", backbone={}, weights_hash="-", preprocessing={})
    with tempfile.TemporaryDirectory(prefix="featx-bench-writer-") as folder:
        store = FeatureStore.create(Path(folder) / f"{key}.zarr.partial", key=key, key_inputs=inputs, index=index,
                                    feature_dims=feature_dims, block_rows=1024)
        rng = np.random.default_rng(0)
        batch_features = {layer: {kind: rng.standard_normal((args.batch, dim)).astype(np.float16)
                                  for kind in ("cls", "pooled")} for layer, dim in feature_dims.items()}
        writer = BlockWriter(store)
        start = time.perf_counter()
        for first in range(0, n - n % args.batch, args.batch):
            writer.put(Batch(np.arange(first, first + args.batch), batch_features, [""] * args.batch))
        writer.close()
        return (n - n % args.batch) / (time.perf_counter() - start)


def peak_rss_child(args: argparse.Namespace, csv: Path, cache: Path) -> None:
    """Run one extraction and print this process's peak RSS (MiB) with its workers'."""
    extraction(args, load(args), csv, cache)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"main_mib": own, "worker_mib": workers}))


def pipeline_share(times) -> float:
    """The fraction of the extracting thread's time not spent computing (robust to a busy machine)."""
    return (times.total - times.compute) / times.total if times.total else 0.0


def side_by_side(args: argparse.Namespace, backbones: list) -> None:
    """1024 px 16-bit PNGs: pixel store build + two backbones from it, against two backbones from the PNGs."""
    csv = make_png_dataset(args.data, args.png16, size=1024, bits=16)
    with tempfile.TemporaryDirectory(prefix="featx-bench-cache-") as cache:
        start = time.perf_counter()
        built = build_pixels(args, csv, Path(cache))
        build_s = time.perf_counter() - start
        from_pixels = [extraction(args, b, csv, Path(cache), pixels=True).seconds for b in backbones]
    with tempfile.TemporaryDirectory(prefix="featx-bench-cache-") as cache:
        from_pngs = [extraction(args, b, csv, Path(cache)).seconds for b in backbones]
    cores = built.workers
    print(f"\n{args.png16} PNGs 1024x1024 16-bit -> {args.size} px, two backbones "
          f"({', '.join(b.spec.name + '/' + str(len(b.feature_dims)) + ' layers' for b in backbones)}):")
    print(f"{'pixel store build':<34}{build_s:>8.1f} s   {args.png16 / build_s:>8.1f} images/s over {cores} "
          f"processes = {args.png16 / build_s / cores:.1f} images/s per core")
    print(f"{'two backbones from the pixel store':<34}{sum(from_pixels):>8.1f} s   "
          f"({' + '.join(f'{t:.1f}' for t in from_pixels)})")
    print(f"{'build + two backbones':<34}{build_s + sum(from_pixels):>8.1f} s")
    print(f"{'two backbones from the PNGs':<34}{sum(from_pngs):>8.1f} s   "
          f"({' + '.join(f'{t:.1f}' for t in from_pngs)}; {args.workers} DataLoader workers)")
    print(f"{'speed-up (PNGs / pixel store path)':<34}{sum(from_pngs) / (build_s + sum(from_pixels)):>8.2f} x   "
          f"(each further backbone: {from_pngs[-1] / from_pixels[-1]:.2f} x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=["dinov2_vits14"])
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--n", type=int, default=1024, help="images in the throughput run")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers of the raw-file path")
    parser.add_argument("--decode-workers", type=int, default=None, help="pixel-store build (default: all cores)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model-overrides", default="", help='JSON, e.g. {"depth": 4}')
    parser.add_argument("--rss-sizes", type=int, nargs=2, default=(512, 2048), help="0 0 skips the RSS runs")
    parser.add_argument("--png16", type=int, default=0, help="N: also the 1024 px 16-bit PNG side-by-side")
    parser.add_argument("--skip-raw", action="store_true", help="only the pixel-store path per backbone")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "featx-bench-data")
    parser.add_argument("--rss-child", type=Path, default=None, help=argparse.SUPPRESS)
    add_dry_run(parser)
    args = parser.parse_args()
    shrink(args, size=28, n=24, batch=8, workers=0, decode_workers=1, png16=min(args.png16, 2),
           model_overrides='{"depth": 4, "embed_dim": 32, "num_heads": 2}',
           rss_sizes=(16, 24) if args.rss_sizes[0] else (0, 0))

    if args.rss_child is not None:
        peak_rss_child(args, args.rss_child, Path(tempfile.mkdtemp(prefix="featx-bench-cache-")))
        return

    csv = make_png_dataset(args.data, args.n)
    print(f"device={args.device} size={args.size} batch={args.batch} workers={args.workers} n={args.n} "
          f"(random weights)")
    backbones = [load(args, name) for name in args.backbones]  # one model per backbone for every measurement
    with tempfile.TemporaryDirectory(prefix="featx-bench-cache-") as pixel_cache:
        built = build_pixels(args, csv, Path(pixel_cache))
        print(f"pixel store built: {built.rows_decoded} images, {built.images_per_second:.1f} images/s over "
              f"{built.workers} processes (not part of the ratios below)")
        for backbone in backbones:  # each into its own feature store beside the one pixel store
            n_batches = max(4, args.n // args.batch)
            before = forward_only(args, backbone, n_batches)
            fed = extraction(args, backbone, csv, Path(pixel_cache), pixels=True)
            raw = None
            if not args.skip_raw:
                with tempfile.TemporaryDirectory(prefix="featx-bench-cache-") as cache:
                    raw = extraction(args, backbone, csv, Path(cache))
            after = forward_only(args, backbone, n_batches)
            forward_rate = (before + after) / 2  # measured on both sides: a drifting machine shows as a spread
            print(f"\n{backbone.spec.name} ({len(backbone.feature_dims)} layers stored)")
            print(f"{'forward-only images/s':<34}{forward_rate:>10.1f}   (before {before:.1f}, after {after:.1f})")
            print(f"{'pixel store -> store, steady':<34}{fed.steady_rows_per_second:>10.1f}   "
                  f"ratio {fed.steady_rows_per_second / forward_rate:.3f}  (target >= 0.9 CPU, >= 0.95 GPU ViT-L)")
            print(f"{'pixel store -> store, total':<34}{fed.rows_per_second:>10.1f}   "
                  f"ratio {fed.rows_per_second / forward_rate:.3f}  (+ model to device, store layout, publish)")
            print(f"{'  time split':<34}{fed.steady.times.summary()}")
            print(f"{'  pipeline share':<34}{pipeline_share(fed.steady.times):>9.1%}   "
                  "(read + transfer + write, of the extracting thread's time)")
            if raw is not None:
                print(f"{'PNG files -> store, steady':<34}{raw.steady_rows_per_second:>10.1f}   "
                      f"ratio {raw.steady_rows_per_second / forward_rate:.3f}")
                print(f"{'PNG files -> store, total':<34}{raw.rows_per_second:>10.1f}   "
                      f"ratio {raw.rows_per_second / forward_rate:.3f}")
                print(f"{'  time split':<34}{raw.steady.times.summary()}")
                print(f"{'  pipeline share':<34}{pipeline_share(raw.steady.times):>9.1%}")

    backbone = backbones[0]
    if not args.skip_raw:
        with tempfile.TemporaryDirectory(prefix="featx-bench-cache-") as cache:
            pipeline_rate = pipeline_only(args, backbone, csv, Path(cache))
        reader_rate = reader_only(args, csv)
        n_written = max(4096, args.n // 4) // 1024 * 1024
        writer_rate = writer_only(args, backbone.feature_dims, n_written)
        print(f"\nstages of the PNG-file path ({backbone.spec.name}):")
        print(f"{'pipeline, null model rows/s':<34}{pipeline_rate:>10.1f}   (steady; everything but the forward)")
        print(f"{'reader alone rows/s':<34}{reader_rate:>10.1f}   (DataLoader: decode, preprocess, pin, to device)")
        print(f"{'writer alone rows/s':<34}{writer_rate:>10.1f}   (whole blocks into Zarr, same feature sizes)")

    if args.png16:
        pair = backbones[:2] if len(backbones) >= 2 else [backbone, load_last_block(args)]
        side_by_side(args, pair)

    if not args.rss_sizes[0]:
        return
    print("\npeak host RSS of extraction from PNG files (fresh process each):")
    print(f"{'samples':>8}{'main MiB':>12}{'workers MiB':>14}")
    for n in args.rss_sizes:
        rss_csv = make_png_dataset(args.data, n)
        child = [sys.executable, __file__, "--rss-child", str(rss_csv), "--backbones", args.backbones[0]] + [
            a for pair in (("--size", str(args.size)), ("--batch", str(args.batch)),
                           ("--workers", str(args.workers)), ("--device", args.device)) for a in pair
        ] + (["--model-overrides", args.model_overrides] if args.model_overrides else [])
        output = subprocess.run(child, check=True, capture_output=True, text=True, env=os.environ).stdout
        peak = json.loads(output.strip().splitlines()[-1])
        print(f"{n:>8}{peak['main_mib']:>12.0f}{peak['worker_mib']:>14.0f}")


def load_last_block(args: argparse.Namespace):
    """The second backbone of the side-by-side when only one is named: the same model, last block only."""
    from featx.backbones import load_backbone

    overrides = json.loads(args.model_overrides) if args.model_overrides else None
    return load_backbone(args.backbones[0], img_size=args.size, random_init=True, n_last=1, model_overrides=overrides)


if __name__ == "__main__":
    main()
