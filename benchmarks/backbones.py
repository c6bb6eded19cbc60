"""Forward-only throughput of every backbone, as featx runs it (forward_intermediates, bf16 autocast).

    python benchmarks/backbones.py --device cuda --sizes 224 448 --batch 64 --random-init
    python benchmarks/backbones.py --device cuda --names dinov2_vitl14 clip_vitl14 --sizes 448 --random-init
    python benchmarks/backbones.py --device cuda --set new --sizes 224 448 --batch 64 --random-init  # DINOv3, RAD-DINO, BiomedCLIP, SigLIP 2
    python benchmarks/backbones.py --device cpu --tiny            # smoke test: tiny models, tiny images

One line per (backbone, size): name, size, parameters (M), forward-only images/s (pixels already on
the device; cuda: bf16 autocast, warm-up then timed between cuda synchronizes; cpu: float32), the
patch grid, and where the weights came from. Speed does not depend on the weights, so random
weights (--random-init) are fine here and every line says when they were used. With --check each
line also gives the cosine similarity of bf16 and fp32 features of the deepest layer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import torch
from dry_run import add_dry_run, shrink  # benchmarks/dry_run.py, beside this script

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# tiny architectures for --tiny (CPU smoke tests): same code paths, a few ms per batch
TINY_OVERRIDES = {
    "dinov2": {"depth": 2, "embed_dim": 64, "num_heads": 2, "mlp_ratio": 4.0},
    "mae": {"depth": 2, "embed_dim": 64, "num_heads": 2},
    "msn": {"depth": 2, "embed_dim": 64, "num_heads": 2},
    "supervised_vit": {"depth": 2, "embed_dim": 64, "num_heads": 2},
    "timm_vit": {"depth": 2, "embed_dim": 64, "num_heads": 2},
    "sam": {"depth": 2, "embed_dim": 64, "num_heads": 2, "global_attn_indexes": [1], "window_size": 2},
    "clip": {"layers": 2, "width": 64, "head_width": 32, "embed_dim": 32},
    "dinov3": {"depth": 2, "embed_dim": 64, "num_heads": 2},
    "siglip2": {"depth": 2, "embed_dim": 64, "num_heads": 2},
    "rad_dino": {"depth": 2, "embed_dim": 64, "num_heads": 2},
    "biomedclip": {"depth": 2, "embed_dim": 64, "num_heads": 2},
}
TINY_CNN = {
    "resnet152": {"layers": [1, 1, 1, 1]},
    "densenet201": {"block_config": [1, 1, 1, 1], "growth_rate": 8},
    "vgg19": {"mlp_ratio": 1 / 64},
    **{f"dinov3_convnext_{size}": {"depths": [1, 1, 1, 1], "dims": [16, 32, 64, 128]}
       for size in ("tiny", "small", "base", "large")},
}
#: backbones added after the paper (issue 16); "--set paper" is every other registered name
NEW_PREFIXES = ("dinov3_", "siglip2_", "rad_dino", "biomedclip_")


def backbone_set(which: str) -> list[str]:
    """The registered names of one set: ``paper`` (the paper's families), ``new`` (issue 16) or ``all``."""
    from featx.backbones import list_backbones

    names = [n for n in list_backbones() if not n.endswith("3d")]  # 3D encoders: benchmarks/volumes.py
    if which == "all":
        return names
    new = [n for n in names if n.startswith(NEW_PREFIXES)]
    return new if which == "new" else [n for n in names if n not in new]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="input resolutions (default 224 448; --tiny: 56)")
    parser.add_argument("--batch", type=int, default=None, help="images per forward (default 64; --tiny: 4)")
    parser.add_argument("--names", nargs="+", default=None, help="backbones (default: every registered one of --set)")
    parser.add_argument("--set", dest="which", choices=["all", "paper", "new"], default="all",
                        help="registered backbones to run without --names: the paper's, the post-paper ones, or all")
    parser.add_argument("--random-init", action="store_true", help="random weights (speed does not depend on them)")
    parser.add_argument("--tiny", action="store_true", help="tiny architectures and sizes: a CPU smoke test")
    parser.add_argument("--n-last", type=int, default=4, help="layers returned (as extraction would)")
    parser.add_argument("--patch-tokens", action="store_true", help="also return patch tokens")
    parser.add_argument("--warmup", type=int, default=None, help="untimed batches first (default 3; --tiny: 1)")
    parser.add_argument("--iters", type=int, default=None, help="timed batches (default 10; --tiny: 2)")
    parser.add_argument("--dtype", choices=["bf16", "fp32"], default=None, help="default: bf16 on cuda, fp32 on cpu")
    parser.add_argument("--check", action="store_true", help="report bf16-vs-fp32 cosine of the deepest cls feature")
    parser.add_argument("--json-out", type=Path, default=None, help="also write one JSON record per line here")
    add_dry_run(parser)
    args = parser.parse_args(argv)
    shrink(args, tiny=True, sizes=None, batch=None, warmup=None, iters=None, dtype=None)
    args.sizes = args.sizes or ([56] if args.tiny else [224, 448])
    args.batch = args.batch or (4 if args.tiny else 64)
    args.warmup = 1 if args.tiny and args.warmup is None else (3 if args.warmup is None else args.warmup)
    args.iters = 2 if args.tiny and args.iters is None else (10 if args.iters is None else args.iters)
    args.dtype = args.dtype or ("bf16" if args.device.startswith("cuda") else "fp32")
    if args.tiny:
        args.random_init = True
    return args


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, dtype: str):
    if dtype == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def bench_one(name: str, size: int, args: argparse.Namespace) -> dict:
    from featx.backbones import get_backbone_def, load_backbone

    definition = get_backbone_def(name)
    spec = definition.spec
    overrides = None
    if args.tiny:
        overrides = TINY_CNN.get(name) or TINY_OVERRIDES.get(spec.family)
        patch = spec.patch_size or 32
        size = max(patch, round(size / patch) * patch) if spec.patch_size else max(32, size)
    device = torch.device(args.device)
    n_last = args.n_last
    # build straight on the device: random init of a 1B-parameter model on a GPU takes a moment
    build_device = device if args.random_init else torch.device("cpu")
    with build_device:
        try:
            loaded = load_backbone(name, img_size=size, random_init=args.random_init, n_last=n_last,
                                   patch_tokens=args.patch_tokens, model_overrides=overrides)
        except Exception as exc:  # a layer limit on tiny models: fall back to the last block only
            if "n_last" not in str(exc):
                raise
            n_last = 1
            loaded = load_backbone(name, img_size=size, random_init=args.random_init, n_last=1,
                                   patch_tokens=args.patch_tokens, model_overrides=overrides)
    model = loaded.model.to(device)
    params = sum(p.numel() for p in model.trunk.parameters()) / 1e6
    x = torch.randn(args.batch, 3, size, size, device=device)
    with torch.inference_mode(), _autocast(device, args.dtype):
        for _ in range(args.warmup):
            model(x)
        _sync(device)
        start = time.perf_counter()
        for _ in range(args.iters):
            out = model(x)
        _sync(device)
        elapsed = time.perf_counter() - start
    record = {
        "name": name,
        "size": size,
        "params_m": round(params, 2),
        "images_per_s": round(args.batch * args.iters / elapsed, 1),
        "batch": args.batch,
        "dtype": args.dtype,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "layers": loaded.layer_names,
        "feature_dim": loaded.feature_dims[loaded.layer_names[-1]],
        "patch_grid": loaded.config["patch_grid"],
        "weights": "random-init" if loaded.random_init else loaded.weights_hash[:12],
        "tiny": bool(args.tiny),
    }
    if device.type == "cuda":
        record["peak_mem_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    if args.check:
        deepest = loaded.layer_names[-1]
        with torch.inference_mode():
            small = x[: min(8, args.batch)]
            ref = model(small)[deepest]["cls"].float()
            with torch.autocast(device.type, dtype=torch.bfloat16):
                low = model(small)[deepest]["cls"].float()
        record["bf16_cos"] = round(float(torch.nn.functional.cosine_similarity(ref, low, dim=-1).min()), 5)
        record["finite"] = bool(torch.isfinite(low).all())
    del model, loaded, x, out
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    return record


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = args.names or backbone_set(args.which)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("--device cuda asked for, but torch sees no CUDA device", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    note = "RANDOM weights (--random-init): speed only, features meaningless" if args.random_init else "published weights"
    print(f"# featx backbones forward-only benchmark: device={args.device} dtype={args.dtype} batch={args.batch} "
          f"warmup={args.warmup} iters={args.iters} n_last={args.n_last} patch_tokens={args.patch_tokens}; {note}"
          + ("; TINY architectures" if args.tiny else ""))
    print(f"{'name':<26} {'size':>5} {'params(M)':>10} {'images/s':>10} {'grid':>7}  weights")
    out_file = open(args.json_out, "a") if args.json_out else None  # noqa: SIM115 - appended to per row, closed below
    failures = 0
    for name in names:
        for size in args.sizes:
            try:
                rec = bench_one(name, size, args)
            except torch.cuda.OutOfMemoryError:
                failures += 1
                torch.cuda.empty_cache()
                print(f"{name:<26} {size:>5}  out of GPU memory at batch {args.batch}")
                continue
            except Exception as exc:  # noqa: BLE001 - report and go on with the other backbones
                failures += 1
                print(f"{name:<26} {size:>5}  FAILED: {str(exc).splitlines()[0]}")
                continue
            grid = "x".join(map(str, rec["patch_grid"])) if rec["patch_grid"] else "-"
            extra = f"  bf16_cos={rec['bf16_cos']}" if "bf16_cos" in rec else ""
            extra += f"  peak={rec['peak_mem_gib']}GiB" if "peak_mem_gib" in rec else ""
            print(f"{name:<26} {rec['size']:>5} {rec['params_m']:>10.1f} {rec['images_per_s']:>10.1f} {grid:>7}  "
                  f"{rec['weights']}{extra}", flush=True)
            if out_file:
                out_file.write(json.dumps(rec) + "\n")
                out_file.flush()
    if out_file:
        out_file.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
