"""Fine-tuning speed and memory per method, side by side in one run (paper Table 9's efficiency side).

For each task, backbone and method (linear control, BitFit, LoRA, full) it builds the model
featx fine-tunes (:class:`featx.finetune.methods.Classifier`, or for segmentation
:class:`featx.finetune.segmenter.Segmenter` with the probes' U-Net decoder on the last 5
blocks, with the method applied), then times optimiser steps on synthetic uint8 batches
already on the device (bf16 autocast and gradient checkpointing on CUDA, as `featx finetune`
runs; the classification loss is BCE, the segmentation loss soft Dice), after warm-up steps.
Prints steps/s, images/s, peak GPU memory, each method's speed relative to the linear
control, and the trainable-parameter table. Random weights (the speed does not depend on them).

    python benchmarks/finetune.py --device cuda --backbones dinov2_vits14 dinov2_vitl14 --steps 200
    python benchmarks/finetune.py --device cuda --tasks segmentation --size 448 --batch 16 --steps 100
    python benchmarks/finetune.py --count-only dinov2_vitg14   # Table 9's parameter column (meta device)
    python benchmarks/finetune.py --dry-run --tasks classification segmentation   # tiny CPU run of the same code
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from featx.backbones import load_backbone  # noqa: E402
from featx.decoders.loss import segmentation_loss  # noqa: E402
from featx.decoders.models import decoder_blocks  # noqa: E402
from featx.finetune.config import METHODS, FinetuneConfig  # noqa: E402
from featx.finetune.methods import Classifier, TunedBackbone, apply_method, parameter_counts  # noqa: E402
from featx.finetune.segmenter import Segmenter  # noqa: E402

TINY = {"depth": 2, "embed_dim": 32, "num_heads": 2}
TINY_SEG = {**TINY, "depth": 5}  # the U-Net decoder reads 5 blocks
TASKS = ("classification", "segmentation")


def build(name: str, task: str, args: argparse.Namespace) -> TunedBackbone:
    """The model `featx finetune` trains for ``task`` (random weights)."""
    segmentation = task == "segmentation"
    overrides = (TINY_SEG if segmentation else TINY) if args.dry_run else None
    loaded = load_backbone(name, img_size=args.size, random_init=True, n_last=decoder_blocks(args.decoder) if segmentation else 1,
                           patch_tokens=segmentation, model_overrides=overrides)
    torch.manual_seed(0)
    return Segmenter(loaded, args.decoder, args.seg_classes) if segmentation else Classifier(loaded, args.classes)


def measure(name: str, task: str, method: str, args: argparse.Namespace, device: torch.device) -> dict:
    model = build(name, task, args)
    on_gpu = device.type == "cuda"
    segmentation = task == "segmentation"
    config = FinetuneConfig(method=method, grad_checkpointing=on_gpu and not args.no_grad_checkpointing,
                            decoder=args.decoder if segmentation else None)
    groups = apply_method(model, config)
    trainable, total = parameter_counts(model)
    model.to(device).train()
    optimiser = torch.optim.AdamW([{"params": g["params"], "lr": g["lr"]} for g in groups])
    pixels = torch.randint(0, 256, (args.batch, 3, args.size, args.size), dtype=torch.uint8, device=device)
    if segmentation:
        target = torch.randint(0, args.seg_classes, (args.batch, args.size, args.size), device=device)
    else:
        target = torch.randint(0, 2, (args.batch, args.classes), device=device).float()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_gpu else contextlib.nullcontext()

    def step() -> None:
        with autocast:
            logits = model(pixels).float()
            if segmentation:
                loss = segmentation_loss(logits, target, args.seg_classes, "dice")
            else:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    for _ in range(args.warmup):
        step()
    if on_gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if on_gpu:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if on_gpu else float("nan")
    return {"backbone": name, "task": task, "method": method, "trainable": trainable, "total": total,
            "steps_per_s": args.steps / seconds, "images_per_s": args.steps * args.batch / seconds, "peak_gib": peak}


def count_table(name: str, methods: list[str], size: int, classes: int) -> None:
    """Trainable / total parameters of each method, on the meta device (no memory, no weights)."""
    for method in methods:
        with torch.device("meta"):
            model = Classifier(load_backbone(name, img_size=size, random_init=True, n_last=1), classes)
            apply_method(model, FinetuneConfig(method=method))
        trainable, total = parameter_counts(model)
        print(f"{name:16s} {method:7s} {trainable:>13,} {total:>13,} {100 * trainable / total:>6.2f}%", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backbones", nargs="+", default=["dinov2_vits14", "dinov2_vitl14"])
    parser.add_argument("--methods", nargs="+", default=["linear", "bitfit", "lora", "full"], choices=METHODS)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--classes", type=int, default=14, help="classification outputs (NIH: 14)")
    parser.add_argument("--tasks", nargs="+", default=["classification"], choices=TASKS)
    parser.add_argument("--decoder", default="seg_unet", choices=["seg_unet", "seg_linear"])
    parser.add_argument("--seg-classes", type=int, default=16, help="segmentation classes with background (AMOS: 16)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--no-grad-checkpointing", action="store_true")
    parser.add_argument("--dry-run", action="store_true", help="tiny backbones, 28 px, 3 steps on the CPU")
    parser.add_argument("--count-only", nargs="+", default=[], metavar="BACKBONE",
                        help="only print the parameter table of these backbones (e.g. dinov2_vitg14, paper Table 9)")
    args = parser.parse_args()
    if args.dry_run and args.count_only:
        args.count_only = ["dinov2_vits14"]  # the same table, built in a second rather than 18 s
    if args.count_only:
        print(f"parameter counts, {args.classes}-output head, LoRA r=48 alpha=16 on qkv/fc1/fc2 (featx defaults)")
        for name in args.count_only:
            count_table(name, args.methods, args.size, args.classes)
        return
    if args.dry_run:
        args.device, args.size, args.batch, args.steps, args.warmup = "cpu", 28, 4, 3, 1
    device = torch.device(args.device)
    print(f"device {device}, {args.size} px, batch {args.batch}, {args.steps} timed steps after {args.warmup} warm-up, "
          f"bf16 autocast {'on' if device.type == 'cuda' else 'off'}, random weights")
    for task in args.tasks:
        head = f"linear head, {args.classes} outputs" if task == "classification" else f"{args.decoder} decoder, {args.seg_classes} classes"
        print(f"{task} ({head})")
        print(f"{'backbone':16s} {'method':7s} {'trainable':>13s} {'total':>13s} {'share':>7s} {'steps/s':>8s} "
              f"{'images/s':>9s} {'vs linear':>9s} {'peak GiB':>8s}")
        for name in args.backbones:
            linear_speed = None
            for method in args.methods:
                try:
                    row = measure(name, task, method, args, device)
                    if device.type == "cuda":
                        torch.cuda.empty_cache()  # the model and optimiser went with measure's frame
                except torch.cuda.OutOfMemoryError as error:
                    print(f"{name:16s} {method:7s} out of memory at batch {args.batch}: {str(error).splitlines()[0]}")
                    torch.cuda.empty_cache()
                    continue
                if method == "linear":
                    linear_speed = row["images_per_s"]
                ratio = f"{row['images_per_s'] / linear_speed:.2f}x" if linear_speed else "-"
                print(f"{name:16s} {method:7s} {row['trainable']:>13,} {row['total']:>13,} "
                      f"{100 * row['trainable'] / row['total']:>6.2f}% {row['steps_per_s']:>8.2f} "
                      f"{row['images_per_s']:>9.1f} {ratio:>9s} {row['peak_gib']:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
