"""`featx demo`: the whole study in miniature on built-in planted-signal data."""

from __future__ import annotations

from pathlib import Path

import typer

from featx.jobs.checks import check_device
from featx.jobs.fields import key_values


def demo_command(
    out: Path = typer.Option(Path("demo-out"), help="Folder for data, cache, results and report."),
    backbone: list[str] | None = typer.Option(
        None, "--backbone", help="Backbone name (repeatable); default: a tiny DINOv2 ViT, CLIP ViT and ResNet."),
    size: int = typer.Option(56, help="Input resolution (small keeps the demo quick on a CPU)."),
    weights: Path | None = typer.Option(None, help="Pretrained weights file for the one --backbone given; "
                                                      "without it weights are random."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    workers: int = typer.Option(2, help="DataLoader worker processes."),
    model_override: list[str] | None = typer.Option(None, "--model-override",
                                                       help="key=value for every --backbone given, e.g. depth=5."),
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
    typer.echo("\n" + result.table + "\n")
    typer.echo("What to read:")
    typer.echo(f"  report      {result.report}" + (f"  (figure: {result.figure})" if result.figure else ""))
    typer.echo(f"  results     {result.results}  (one JSON line per number, with provenance)")
    typer.echo(f"  stores      {out / 'cache'}  ({len(result.stores)} feature stores: "
               f"{len({n.split(' x ')[0] for n in result.stores})} datasets x {len(chosen)} backbones; "
               "layout in docs/cache-format.md)")
    typer.echo(
        "  next        featx probe --store STORE --setting linear --linear-backend sklearn --out more.jsonl; "
        "featx report more.jsonl"
    )
    typer.echo(
        "              (the demo's linear probe is scikit-learn's logistic regression, named in every record; without "
        "--linear-backend, featx probe runs the paper's SGD grid, which under-fits sets this small)"
    )
    typer.echo(f"\nOpen the report: {result.html}")
