"""Segmentation decoder benchmarks (issue 10): training from the store vs from memory, token formats.

    python benchmarks/segmentation.py                 # CPU default, a few minutes on 2 cores
    python benchmarks/segmentation.py --small         # under a minute
    python benchmarks/segmentation.py --device cuda --n 2048 --grid 32 --dim 1024 --size 448   # ViT-L/14 @ 448 shapes

A synthetic segmentation store is written with the real FeatureStore (patch tokens of 5
blocks sharded like `featx extract` shards them, masks at the input size): each slice holds
random ellipses; each block's patch tokens carry the fraction of each patch covered by a
class along a random direction, plus noise. Then, side by side in one run:

1. **Reader**: decoder training samples/s reading the store through the prefetching
   ``StoreBatches`` against the same training on tokens already in memory
   (``MemoryBatches``), for the linear decoder (1 block, the reader's hardest case: little
   compute per byte) and the U-Net decoder (5 blocks), and the reader alone (one pass, no
   training). Target: ratio >= 0.8 on CPU.
2. **Token formats** (``--formats``): bytes per sample of the patch tokens on disk and the
   test Dice of the same decoder, split and seed for each stored format.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from dry_run import add_dry_run, shrink  # benchmarks/dry_run.py, beside this script

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from featx.cache import FeatureStore  # noqa: E402
from featx.datasets.index import SampleIndex  # noqa: E402
from featx.probes.segmentation import SegOptions, evaluate_decoder, open_segmentation  # noqa: E402
from featx.probes.segmentation.data import MemoryBatches, StoreBatches, batch_order  # noqa: E402
from featx.probes.segmentation.train import TrainConfig, fit  # noqa: E402


def synthetic_masks(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        for c in (1, 2):
            cy, cx = rng.uniform(0.2, 0.8, 2) * size
            ry, rx = rng.uniform(0.08, 0.2, 2) * size
            masks[i][((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = c
    return masks


def write_store(folder: Path, *, n: int, grid: int, dim: int, size: int, n_layers: int = 5,
                patch_format: str = "float16", seed: int = 0) -> FeatureStore:
    """A published synthetic segmentation store (3 classes) under ``folder``."""
    rng = np.random.default_rng(seed)
    masks = synthetic_masks(n, size, rng)
    patients = [f"p{i:05d}" for i in range(n)]
    split = np.array(["train"] * n, dtype=object)
    split[int(0.7 * n): int(0.8 * n)] = "val"
    split[int(0.8 * n):] = "test"
    table = pd.DataFrame({"sample_id": [f"s{i:05d}.png" for i in range(n)], "patient_id": patients, "split": split,
                          "source": [f"/synthetic/s{i:05d}.png" for i in range(n)], "reader": "image"})
    index = SampleIndex(dataset="synthetic_seg", task="segmentation", modality="other",
                        label_names=["background", "a", "b"], table=table, labels=np.zeros((n, 0), np.float32))
    layers = [f"block_{i}" for i in range(n_layers)]
    block_rows = max(1, min(n, (128 << 20) // (2 * grid * grid * dim * n_layers)))
    kwargs = {"patch_format": patch_format} if patch_format != "float16" else {}
    store = FeatureStore.create(
        folder / "synthetic.zarr.partial", key=f"synthetic-{patch_format}", key_inputs={"patch_format": patch_format},
        index=index, feature_dims=dict.fromkeys(layers, dim), block_rows=block_rows,
        patch_grid=dict.fromkeys(layers, (grid, grid)), mask_size=size,
        provenance={"backbone": {"name": "synthetic", "random_init": True, "img_size": size}}, **kwargs,
    )
    directions = rng.normal(size=(n_layers, 3, dim)).astype(np.float32)
    cell = size // grid
    for block in range(store.n_blocks):
        rows = store.block_slice(block)
        m = masks[rows][:, : grid * cell, : grid * cell].reshape(-1, grid, cell, grid, cell)
        cover = np.stack([(m == c).mean((2, 4)) for c in range(3)], -1).astype(np.float32)  # (b, g, g, 3)
        features = {}
        for i, layer in enumerate(layers):
            tokens = cover @ directions[i] + rng.normal(0, 0.5, (*cover.shape[:3], dim)).astype(np.float32)
            pooled = tokens.mean((1, 2))
            features[layer] = {"cls": pooled, "pooled": pooled, "patch": tokens}
        store.write_block(block, features, np.zeros(len(range(rows.start, rows.stop)), bool),
                          [""] * (rows.stop - rows.start), masks[rows])
    return FeatureStore.open(store.publish())


def patch_bytes(store: FeatureStore) -> int:
    """Bytes on disk of every layer's patch tokens (and their scales), over all rows."""
    total = 0
    for layer in store.layers:
        folder = Path(store.path) / "features" / layer
        total += sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and "patch" in p.relative_to(folder).parts[0])
    return total


def reader_rates(store: FeatureStore, decoder: str, epochs: int, batch: int, device: str, repeats: int) -> dict:
    data = open_segmentation(store)
    layers = data.decoder_layers(decoder)
    train = data.positions("train")
    config = TrainConfig(decoder, 1e-3, epochs=epochs, batch_size=batch)
    kw = {"dims": [data.dims[layer] for layer in layers], "n_classes": data.n_classes, "out_size": data.mask_size,
          "device": device}
    t0 = time.perf_counter()
    memory = MemoryBatches(data, layers, train)
    load = time.perf_counter() - t0
    sources = {"memory": memory, "store": StoreBatches(data, layers)}
    fit(sources["memory"], train[: 2 * batch], TrainConfig(decoder, 1e-3, epochs=1, batch_size=batch), **kw)  # warm-up
    best = {}
    for _ in range(repeats):  # interleaved, best of each: the shared machine's load hits both alike
        for name, source in sources.items():
            t0 = time.perf_counter()
            fit(source, train, config, **kw)
            seconds = time.perf_counter() - t0
            best[name] = min(best.get(name, np.inf), seconds)
    t0 = time.perf_counter()
    for _ in sources["store"].batches(batch_order(train, batch, 0)):
        pass
    reader_only = len(train) / (time.perf_counter() - t0)
    rate = {name: epochs * len(train) / s for name, s in best.items()}
    return {"decoder": decoder, "n_train": int(len(train)), "epochs": epochs, "memory_load_s": round(load, 2),
            "memory_samples_per_s": round(rate["memory"], 1), "store_samples_per_s": round(rate["store"], 1),
            "ratio_store_over_memory": round(rate["store"] / rate["memory"], 3),
            "reader_alone_samples_per_s": round(reader_only, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--n", type=int, default=320, help="slices in the store")
    parser.add_argument("--grid", type=int, default=16, help="patch grid (224 px / 14)")
    parser.add_argument("--dim", type=int, default=384, help="token width (ViT-S: 384)")
    parser.add_argument("--size", type=int, default=224, help="mask size")
    parser.add_argument("--unet-dim", type=int, default=64, help="token width for the U-Net run (CPU time)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--formats", nargs="*", default=["float16"], help="patch-token formats to compare")
    parser.add_argument("--dice-epochs", type=int, default=10)
    parser.add_argument("--json", type=Path)
    add_dry_run(parser)
    args = parser.parse_args()
    shrink(args, small=False, n=40, grid=4, dim=32, size=28, unet_dim=16, epochs=1, repeats=1, dice_epochs=1)
    if args.small:
        args.n, args.grid, args.dim, args.size, args.unet_dim, args.epochs = 160, 8, 192, 112, 32, 2
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "reader": [], "formats": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for decoder, dim in (("seg_linear", args.dim), ("seg_unet", args.unet_dim)):
            store = write_store(tmp / f"{decoder}", n=args.n, grid=args.grid, dim=dim, size=args.size)
            row = reader_rates(store, decoder, args.epochs, args.batch, args.device, args.repeats)
            row["dim"] = dim
            results["reader"].append(row)
            print(f"reader {decoder} D={dim} grid={args.grid} mask={args.size}: memory {row['memory_samples_per_s']} /s, "
                  f"store {row['store_samples_per_s']} /s, ratio {row['ratio_store_over_memory']} "
                  f"(the store reader alone: {row['reader_alone_samples_per_s']} /s)", flush=True)
            shutil.rmtree(tmp / decoder)
        for fmt in args.formats:
            store = write_store(tmp / fmt, n=args.n, grid=args.grid, dim=args.dim, size=args.size, patch_format=fmt)
            data = open_segmentation(store)
            outcome = evaluate_decoder(data, "seg_linear", options=SegOptions(epochs=args.dice_epochs, batch_size=args.batch),
                                       device=args.device, lr=1e-2, n_boot=0)
            row = {"format": fmt, "bytes_per_sample": patch_bytes(store) / store.n_rows,
                   "dice": round(outcome.test.values["dice"], 4), "decoder": "seg_linear", "lr": 1e-2}
            results["formats"].append(row)
            print(f"format {fmt}: {row['bytes_per_sample'] / 1024:.1f} KiB/sample (5 blocks), linear test dice {row['dice']}", flush=True)
    base = next((r for r in results["formats"] if r["format"] == "float16"), None)
    for row in results["formats"]:
        if base is not None and row is not base:
            print(f"  {row['format']} vs float16: bytes x{row['bytes_per_sample'] / base['bytes_per_sample']:.3f}, "
                  f"dice {row['dice'] - base['dice']:+.4f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
