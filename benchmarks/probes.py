"""Probe benchmarks (issue 5): NIH-sized synthetic features, the whole protocol from the cache.

    python benchmarks/probes.py                # NIH-sized: 112,120 x 1024, 14 labels, 70/10/20
    python benchmarks/probes.py --small        # ~10x smaller, about a minute on 2 CPU cores
    python benchmarks/probes.py --device cuda  # GPU backends (torch kNN / faiss-gpu, torch grid)

Stages, each timed on its own:

1. **kNN**: one exact search (test + val + every memory-bank point leave-one-out), then
   ML-kNN for every k in {10, 20, 100, 200} on validation, the selected k on test, plus
   the DINOv2 weighted vote for every k (the multi-class path) from the same neighbours.
2. **Linear grid**: the paper's 16 configurations (lr x last-1/4 blocks x avgpool),
   SGD momentum 0.9, cosine, 10 epochs, batch 128, trained together on train; chosen on
   val; the chosen one retrained on train+val; test scored once.
3. **Bootstrap**: 1,000 patient resamples of the test macro AUROC with per-class values.
4. **The paper's own way** vs cached features, side by side with a small backbone
   (random-init DINOv2 ViT-S/14 from timm at 56 px): the backbone runs in every epoch of
   every configuration, against featx's extract-once + grid-on-cache. On a GPU all 16
   configurations run on 2,048 images; on CPU (and with ``--small``) 2 of them on 256
   images, scaled to 16.

Peak RSS (the process's maximum resident set) is reported at the end; the features
are held in float16 like the store holds them. Writes a JSON summary with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
from dry_run import add_dry_run, shrink  # benchmarks/dry_run.py, beside this script

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from featx.evaluation.features import ProbeData  # noqa: E402
from featx.evaluation.metrics import score  # noqa: E402
from featx.evaluation.selection import Splits  # noqa: E402
from featx.probes import knn as knn_mod  # noqa: E402
from featx.probes.protocol import evaluate_knn, evaluate_linear, knn_neighbours  # noqa: E402

NIH_PREVALENCE = [0.103, 0.025, 0.119, 0.177, 0.052, 0.056, 0.013, 0.047, 0.042, 0.021, 0.022, 0.015, 0.030, 0.002]
NIH_ROWS, NIH_PATIENTS = 112_120, 30_805


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


def nih_like(n_rows: int, dim: int, n_layers: int = 4, signal: float = 0.04, seed: int = 0) -> ProbeData:
    """Planted-signal multi-label features shaped like NIH ChestX-ray14 in a featx store."""
    rng = np.random.default_rng(seed)
    n_patients = max(10, round(n_rows * NIH_PATIENTS / NIH_ROWS))
    patient_of_row = np.sort(rng.integers(0, n_patients, n_rows))
    order = rng.permutation(n_patients)
    split_of = np.empty(n_patients, dtype="<U5")
    a, b = int(0.7 * n_patients), int(0.8 * n_patients)
    split_of[order[:a]], split_of[order[a:b]], split_of[order[b:]] = "train", "val", "test"
    labels = (rng.random((n_rows, len(NIH_PREVALENCE))) < np.array(NIH_PREVALENCE)).astype(np.float32)
    directions = rng.normal(size=(len(NIH_PREVALENCE), dim)).astype(np.float32)
    layers = [f"block_{i}" for i in range(12 - n_layers, 12)]
    blocks: dict[str, np.ndarray] = {}
    names = [f"cls/{layer}" for layer in layers] + [f"pooled/{layers[-1]}"]
    for depth, name in enumerate(names):
        out = np.empty((n_rows, dim), dtype=np.float16)
        strength = signal * (0.5 + depth / len(names))
        for start in range(0, n_rows, 16384):
            stop = min(start + 16384, n_rows)
            chunk = rng.standard_normal((stop - start, dim), dtype=np.float32)
            chunk += strength * labels[start:stop] @ directions
            out[start:stop] = chunk
        blocks[name] = out
    return ProbeData(
        blocks=blocks,
        layers=layers,
        labels=labels,
        patients=np.char.add("p", patient_of_row.astype(str)),
        split=split_of[patient_of_row],
        ids=np.arange(n_rows).astype(str),
        label_names=[f"finding_{i}" for i in range(len(NIH_PREVALENCE))],
        task="multilabel",
        dataset="nih-synthetic",
    )


def stage_knn(data: ProbeData, device: str, backend: str | None, dtype: str, fit_max: int | None) -> dict:
    splits = Splits(data)
    kmax = max(knn_mod.DEFAULT_KS)
    t0 = time.perf_counter()
    found = knn_neighbours(splits, kmax, selecting=True, fit=True, fit_max=fit_max, backend=backend, device=device, dtype=dtype)
    sync(device)
    t_search = time.perf_counter() - t0
    outcome = evaluate_knn(splits, ks=knn_mod.DEFAULT_KS, neighbours=found, n_boot=0, val_boot=0)
    t_mlknn = time.perf_counter() - t0 - t_search
    # The weighted vote for every k (the multi-class path) on the test rows, from the same search.
    t1 = time.perf_counter()
    for k in knn_mod.DEFAULT_KS:
        knn_mod.weighted_vote(found.final_test, splits.train_val.labels, k)
    t_vote = time.perf_counter() - t1
    return {
        "seconds_search": round(t_search, 2),
        "seconds_mlknn_select_fit_predict_all_k": round(t_mlknn, 2),
        "seconds_weighted_vote_all_k": round(t_vote, 2),
        "seconds_total": round(time.perf_counter() - t0, 2),
        "selected_k": outcome.hyperparameters["k"],
        "test_auroc_macro": round(outcome.test.auroc_macro, 4),
        "backend": found.backend,
        "dtype": found.dtype,
        "requeried": found.n_requeried,
    }


def sync(device: str) -> None:
    """Wait for queued GPU work, so that a stage's clock stops when its work is done."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def grid_ops_per_step(data: ProbeData, device: str, steps: int = 20) -> dict:
    """Operators (and, on a GPU, kernels) one step of the 16-configuration grid launches."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from featx.probes.linear import TorchGrid, protocol_grid

    rows = data.rows("train")[: 128 * steps]
    dims = {name: block.shape[1] for name, block in data.blocks.items()}
    grid = TorchGrid(protocol_grid(len(data.layers)), data.layers, dims, data.n_classes, data.task, device=device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with profile(activities=activities) as prof:
        grid.fit(data.blocks, rows, data.labels[rows], epochs=1, batch_size=128)
        sync(device)
    events = prof.events()
    leaves = [e for e in events if e.name.startswith("aten::") and not any(c.name.startswith("aten::") for c in e.cpu_children)]
    out = {"aten_ops_per_step": round(len(leaves) / steps, 1)}
    if device.startswith("cuda"):
        kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
        out["cuda_kernels_per_step"] = round(len(kernels) / steps, 1)
    return out


def stage_linear(data: ProbeData, device: str) -> dict:
    t0 = time.perf_counter()
    outcome = evaluate_linear(Splits(data), backend="torch", device=device, n_boot=0, val_boot=0)
    seconds = time.perf_counter() - t0
    return {
        **grid_ops_per_step(data, device),
        "seconds_grid_select_retrain_test": round(seconds, 2),
        "configs": len(outcome.val),
        "selected": {k: outcome.hyperparameters[k] for k in ("lr", "n_last_blocks", "avgpool")},
        "test_auroc_macro": round(outcome.test.auroc_macro, 4),
    }


def stage_bootstrap(data: ProbeData) -> dict:
    rows = data.rows("test")
    rng = np.random.default_rng(0)
    scores = data.labels[rows] + rng.normal(0, 1, (rows.size, data.n_classes))
    t0 = time.perf_counter()
    result = score(data.labels[rows], scores, data.patients[rows], task="multilabel", label_names=data.label_names, n_boot=1000)
    return {"seconds_1000_resamples": round(time.perf_counter() - t0, 2), "rows": int(rows.size), "patients": result.n_patients}


def stage_paper_way(n_images: int, img_size: int, depth: int, configs_measured: int, epochs: int, device: str) -> dict:
    """Backbone in every epoch of every configuration vs extract once + grid on the cache."""
    import timm
    import torch

    from featx.probes.linear import TorchGrid, protocol_grid

    torch.manual_seed(0)
    model = timm.create_model(
        "vit_small_patch14_dinov2", pretrained=False, img_size=img_size, depth=depth, num_classes=0
    ).eval().to(device)
    n_blocks = min(4, depth)
    images = torch.rand(n_images, 3, img_size, img_size)
    labels = (torch.rand(n_images, 14) < 0.1).float().numpy()
    batch = 128
    grid = protocol_grid(n_blocks)
    layers = [f"block_{i}" for i in range(n_blocks)]

    def features(x: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.inference_mode():
            out = model.forward_intermediates(x.to(device), indices=n_blocks, return_prefix_tokens=True, intermediates_only=True)
        feats = {}
        for layer, (spatial, prefix) in zip(layers, out):
            feats[f"cls/{layer}"] = prefix[:, 0].float().clone()
            feats[f"pooled/{layer}"] = spatial.float().mean((2, 3)).clone()
        return feats

    dims = {f"{kind}/{layer}": model.embed_dim for layer in layers for kind in ("cls", "pooled")}
    # (a) the paper's way: per configuration, a plain torch loop (nn.Linear, SGD momentum 0.9,
    # cosine schedule) in which the backbone runs on every batch of every epoch.
    bce = torch.nn.BCEWithLogitsLoss()
    target = torch.from_numpy(labels).to(device)
    steps = epochs * math.ceil(n_images / batch)
    t0 = time.perf_counter()
    for config in grid[:configs_measured]:
        names = [f"cls/{layer}" for layer in layers[-config.n_last_blocks :]] + ([f"pooled/{layers[-1]}"] if config.avgpool else [])
        head = torch.nn.Linear(model.embed_dim * len(names), 14).to(device)
        optimiser = torch.optim.SGD(head.parameters(), lr=config.lr, momentum=0.9)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
        for _ in range(epochs):
            order = torch.randperm(n_images)
            for start in range(0, n_images, batch):
                idx = order[start : start + batch]
                feats = features(images[idx])
                loss = bce(head(torch.cat([feats[k] for k in names], 1)), target[idx.to(device)])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
    paper_measured = time.perf_counter() - t0
    paper_full = paper_measured * len(grid) / configs_measured
    # (b) featx: extract once, then the whole grid on cached features.
    t0 = time.perf_counter()
    cached: dict[str, list[np.ndarray]] = {}
    for start in range(0, n_images, batch):
        for k, v in features(images[start : start + batch]).items():
            cached.setdefault(k, []).append(v.cpu().numpy().astype(np.float16))
    blocks = {k: np.concatenate(v) for k, v in cached.items()}
    t_extract = time.perf_counter() - t0
    t0 = time.perf_counter()
    TorchGrid(grid, layers, dims, 14, "multilabel", device=device, seed=0).fit(
        blocks, np.arange(n_images), labels, epochs=epochs, batch_size=batch
    )
    t_grid = time.perf_counter() - t0
    featx_total = t_extract + t_grid
    return {
        "backbone": f"vit_small_patch14_dinov2 (random init, depth {depth}) @ {img_size}px",
        "images": n_images,
        "configs": len(grid),
        "epochs": epochs,
        "paper_way_configs_measured": configs_measured,
        "seconds_paper_way_measured": round(paper_measured, 2),
        "seconds_paper_way_full_grid": round(paper_full, 2),
        "seconds_featx_extract_once": round(t_extract, 2),
        "seconds_featx_grid_on_cache": round(t_grid, 2),
        "seconds_featx_total": round(featx_total, 2),
        "ratio_paper_over_featx": round(paper_full / featx_total, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="~10x smaller data, paper-way run on 2 configs")
    parser.add_argument("--rows", type=int, default=None, help="feature rows (default 112,120; --small 11,212)")
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--knn-backend", default=None, choices=[None, "faiss", "torch"])
    parser.add_argument("--knn-dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--mlknn-fit-max", type=int, default=None, help="ML-kNN tables from a subset (default: exact)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["knn", "linear", "bootstrap", "paper"])
    parser.add_argument("--paper-images", type=int, default=None, help="default 2,048 on a GPU, 256 on CPU or --small")
    parser.add_argument(
        "--paper-configs", type=int, default=None, help="configurations run the paper's way, scaled to 16 (default 16 on a GPU, 2 on CPU)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the summary here")
    add_dry_run(parser)
    args = parser.parse_args(argv)
    shrink(args, small=True, rows=3000, dim=64, paper_images=32, paper_configs=2)
    rows = args.rows or (NIH_ROWS // 10 if args.small else NIH_ROWS)
    summary: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, device {args.device}",
        "rows": rows,
        "dim": args.dim,
        "labels": len(NIH_PREVALENCE),
        "small": args.small,
    }
    if args.device.startswith("cuda"):
        import torch

        summary["gpu"] = torch.cuda.get_device_name(0)
    t0 = time.perf_counter()
    data = nih_like(rows, args.dim)
    summary["seconds_make_features"] = round(time.perf_counter() - t0, 2)
    summary["split_rows"] = {s: int((data.split == s).sum()) for s in ("train", "val", "test")}
    summary["rss_after_features_gib"] = round(peak_rss_gib(), 2)
    print(json.dumps(summary), flush=True)
    if "knn" not in args.skip:
        summary["knn"] = stage_knn(data, args.device, args.knn_backend, args.knn_dtype, args.mlknn_fit_max)
        print("knn", json.dumps(summary["knn"]), flush=True)
    if "linear" not in args.skip:
        summary["linear"] = stage_linear(data, args.device)
        print("linear", json.dumps(summary["linear"]), flush=True)
    if "bootstrap" not in args.skip:
        summary["bootstrap"] = stage_bootstrap(data)
        print("bootstrap", json.dumps(summary["bootstrap"]), flush=True)
    summary["peak_rss_gib_knn_linear"] = round(peak_rss_gib(), 2)
    del data
    if "paper" not in args.skip:
        quick = args.small or not args.device.startswith("cuda")  # the full paper way takes ~1 h on 2 CPU cores
        n_images = args.paper_images or (256 if quick else 2048)
        configs = args.paper_configs or (2 if quick else 16)
        summary["paper_way"] = stage_paper_way(n_images, 56, 4, configs, 10, args.device)
        print("paper_way", json.dumps(summary["paper_way"]), flush=True)
    summary["peak_rss_gib"] = round(peak_rss_gib(), 2)
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
