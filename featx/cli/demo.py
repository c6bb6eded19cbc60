"""`featx demo`: the whole job on built-in planted-signal data."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from featx.jobs.checks import check_device
from featx.jobs.fields import key_values


def demo_command(
    out: Path = typer.Option(Path("demo-out"), help="Folder for data, cache, results and report."),
    backbone: str = typer.Option("dinov2_vits14", help="Backbone name."),
    size: int = typer.Option(112, help="Input resolution (small keeps the demo quick on a CPU)."),
    weights: Optional[Path] = typer.Option(None, help="Pretrained weights file; without it weights are random."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    workers: int = typer.Option(2, help="DataLoader worker processes."),
    model_override: Optional[list[str]] = typer.Option(None, "--model-override", help="key=value, e.g. depth=2."),
) -> None:
    """Generate demo data, extract features, run kNN and linear probes, write a report."""
    from featx.demo.run import run_demo

    check_device(device)
    if weights is None:
        typer.secho(
            f"NOTE: no --weights given, so {backbone} runs with RANDOM weights (LayerScale 1.0 unless "
            "--model-override says otherwise). The demo data carries a planted signal that random features can "
            "still pick up; these numbers say nothing about any pretrained model.",
            fg=typer.colors.YELLOW,
        )
    result = run_demo(
        out,
        backbone=backbone,
        size=size,
        weights=weights,
        device=device,
        workers=workers,
        model_overrides=key_values(model_override or [], "model-override") or None,
    )
    typer.echo("\n" + result.table + "\n")
    typer.echo("What to read:")
    typer.echo(f"  report      {result.report}" + (f"  (figure: {result.figure})" if result.figure else ""))
    typer.echo(f"  results     {result.results}  (one JSON line per number, with provenance)")
    for name, path in result.stores.items():
        typer.echo(f"  store       {path}  ({name}; layout in docs/cache-format.md)")
    typer.echo(
        "  next        featx probe --store STORE --setting linear --linear-backend sklearn --out more.jsonl; "
        "featx report more.jsonl"
    )
    typer.echo(
        "              (the demo's linear probe is scikit-learn's logistic regression, named in every record; without "
        "--linear-backend, featx probe runs the paper's SGD grid, which under-fits sets this small)"
    )
    typer.echo(f"\nOpen the report: {result.html}")
