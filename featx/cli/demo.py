"""`featx demo`: the whole study in miniature on built-in planted-signal data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from featx.jobs.checks import check_device
from featx.jobs.fields import key_values


def demo_command(
    out: Annotated[Path, typer.Option(help="Folder for data, cache, results and report.")] = Path("demo-out"),
    backbone: Annotated[list[str] | None, typer.Option(
        "--backbone", help="Backbone name (repeatable); default: a tiny DINOv2 ViT, CLIP ViT and ResNet.")] = None,
    size: Annotated[int, typer.Option(help="Input resolution (small keeps the demo quick on a CPU).")] = 56,
    weights: Annotated[Path | None, typer.Option(
        help="Pretrained weights file for the one --backbone given; without it weights are random.")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    workers: Annotated[int, typer.Option(help="DataLoader worker processes.")] = 2,
    model_override: Annotated[list[str] | None, typer.Option(
        "--model-override", help="key=value for every --backbone given, e.g. depth=5.")] = None,
) -> None:
    """Generate demo data; extract three backbones; run kNN, linear, few-shot and both decoders; write a report."""
    from featx.demo.run import DEMO_BACKBONES, DemoBackbone, run_demo

    check_device(device)
    overrides = key_values(model_override or [], "model-override")
    if weights is not None and len(backbone or []) != 1:
        raise typer.BadParameter("give exactly one --backbone with --weights (the file holds one model's weights)",
                                 param_hint="--weights")
    if overrides and not backbone:
        raise typer.BadParameter("give --backbone with --model-override (the demo's own backbones are sized already)",
                                 param_hint="--model-override")
    chosen = tuple(DemoBackbone(name, name, overrides) for name in backbone) if backbone else DEMO_BACKBONES
    if weights is None:
        typer.secho(
            f"NOTE: no --weights given, so {', '.join(b.name for b in chosen)} run with RANDOM weights"
            + (" (tiny versions: depth and width cut so the demo takes minutes on a CPU)" if not backbone else "")
            + ". The demo data carries planted signals of graded difficulty that random features can still pick up; "
            "these numbers say nothing about any pretrained model.",
            fg=typer.colors.YELLOW,
        )
    result = run_demo(out, backbones=chosen, size=size, weights=weights, device=device, workers=workers)
    for line in _what_to_read(result, out, len(chosen)):
        typer.echo(line)


def _what_to_read(result: Any, out: Path, n_backbones: int) -> list[str]:
    """The demo's closing lines: the table, where each output is, what to try next, the page to open."""
    said: list[str] = []
    said.append("\n" + result.table + "\n")
    said.append("What to read:")
    said.append(f"  report      {result.report}" + (f"  (figure: {result.figure})" if result.figure else ""))
    said.append(f"  results     {result.results}  (one JSON line per number, with provenance)")
    said.append(f"  stores      {out / 'cache'}  ({len(result.stores)} feature stores: "
                f"{len({n.split(' x ')[0] for n in result.stores})} datasets x {n_backbones} backbones; "
                "layout in docs/cache-format.md)")
    said.append(
        "  next        featx probe --store STORE --setting linear --linear-backend sklearn --out more.jsonl; "
        "featx report more.jsonl"
    )
    said.append(
        "              (the demo's linear probe is scikit-learn's logistic regression, named in every record; without "
        "--linear-backend, featx probe runs the paper's SGD grid, which under-fits sets this small)"
    )
    said.append(f"\nOpen the report: {result.html}")
    return said
