"""``featx probe``: kNN / ML-kNN / linear / few-shot probes from a feature store alone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from featx.cli.checks import check_device
from featx.cli.errors import EXIT_ERROR, EXIT_PARTIAL

SETTING_HELP = "knn | mlknn | linear | fewshot | seg_linear | seg_unet; repeat for several (default: knn and linear)"


def _ints(text: str, option: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"{option}: expected comma-separated integers, got {text!r}") from None


def _shots(text: str) -> list[int | str]:
    out: list[int | str] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part == "all":
            out.append("all")
        elif part.isdigit() and int(part) > 0:
            out.append(int(part))
        else:
            raise typer.BadParameter(f"--shots: expected positive integers or 'all', got {part!r}")
    return out


def probe_command(
    out: Annotated[Optional[Path], typer.Option("--out", help="results file (JSON lines); records are appended")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="a study YAML: probe every store of it not yet probed at its current version")] = None,
    cache: Annotated[Optional[Path], typer.Option("--cache", help="cache root holding the feature stores")] = None,
    dataset: Annotated[Optional[list[str]], typer.Option("--dataset", help="dataset name (repeatable; with --cache)")] = None,
    backbone: Annotated[Optional[list[str]], typer.Option("--backbone", help="backbone name (repeatable; with --cache)")] = None,
    store: Annotated[Optional[list[str]], typer.Option("--store", help="a published store (<key>.zarr folder, or its http(s)/s3 URL) instead of --cache/--dataset/--backbone; repeatable")] = None,
    key: Annotated[Optional[str], typer.Option("--key", help="with --cache: the store whose cache key starts with this")] = None,
    size: Annotated[Optional[int], typer.Option("--size", help="with --cache: the store extracted at this resolution")] = None,
    weights: Annotated[Optional[str], typer.Option("--weights", help="with --cache: random, pretrained, or a prefix of the weights hash")] = None,
    patch_tokens: Annotated[Optional[bool], typer.Option("--patch-tokens/--no-patch-tokens", help="with --cache: the store with (or without) patch tokens")] = None,
    setting: Annotated[Optional[list[str]], typer.Option("--setting", help=SETTING_HELP)] = None,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda (picks the backends)")] = "cpu",
    seed: Annotated[int, typer.Option("--seed", help="seed for training, sampling and the bootstrap")] = 0,
    ks: Annotated[str, typer.Option("--ks", help="kNN k values selected on validation")] = "10,20,100,200",
    k: Annotated[Optional[int], typer.Option("--k", help="fix k (no selection, no validation split needed)")] = None,
    temperature: Annotated[float, typer.Option("--temperature", help="kNN softmax temperature")] = 0.07,
    knn_vote: Annotated[str, typer.Option("--knn-vote", help="dinov2 (softmax over the top max(ks) once, first-k sums) or renormalised (softmax per k)")] = "dinov2",
    multilabel_knn: Annotated[str, typer.Option("--multilabel-knn", help="'knn' on multi-label data: mlknn or weighted (per-class weighted vote)")] = "mlknn",
    knn_backend: Annotated[Optional[str], typer.Option("--knn-backend", help="faiss or torch (default: by --device and what is installed)")] = None,
    knn_dtype: Annotated[str, typer.Option("--knn-dtype", help="torch backend only: float32, float16 or bfloat16")] = "float32",
    mlknn_fit_max: Annotated[Optional[int], typer.Option("--mlknn-fit-max", help="estimate ML-kNN tables from at most this many memory-bank points (default: all, exact)")] = None,
    linear_backend: Annotated[Optional[str], typer.Option("--linear-backend", help="torch (paper's SGD grid, default), sklearn or cuml")] = None,
    epochs: Annotated[int, typer.Option("--epochs", help="linear probe epochs")] = 10,
    batch_size: Annotated[int, typer.Option("--batch-size", help="linear probe batch size")] = 128,
    lrs: Annotated[str, typer.Option("--lrs", help="linear probe learning rates")] = "0.001,0.005,0.01,0.05",
    shots: Annotated[str, typer.Option("--shots", help="few-shot patients per class, e.g. 1,2,4,8,16,all")] = "1,2,4,8,16,all",
    fewshot_seeds: Annotated[int, typer.Option("--fewshot-seeds", help="few-shot repeats (seeds)")] = 5,
    fewshot_linear: Annotated[str, typer.Option("--fewshot-linear", help="few-shot linear probe: logistic (scikit-learn L-BFGS, C=1) or sgd (the paper's SGD linear layer)")] = "logistic",
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="patient bootstrap resamples for the 95% interval")] = 1000,
    val_bootstrap: Annotated[int, typer.Option("--val-bootstrap", help="resamples for validation records")] = 200,
    val_records: Annotated[bool, typer.Option("--val-records/--no-val-records", help="also record every candidate's validation score")] = True,
    allow_test_reuse: Annotated[bool, typer.Option("--allow-test-reuse", help="a deliberate re-run: do not warn when a test split already scored with other hyper-parameters is scored again (records still carry test_reuse)")] = False,
    seg_lrs: Annotated[str, typer.Option("--seg-lrs", help="segmentation decoders: learning rates selected on validation Dice")] = "0.0001,0.001,0.01,0.1",
    seg_epochs: Annotated[int, typer.Option("--seg-epochs", help="segmentation decoder epochs")] = 20,
    seg_batch_size: Annotated[int, typer.Option("--seg-batch-size", help="segmentation decoder batch size (slices/images)")] = 16,
    seg_loss: Annotated[str, typer.Option("--seg-loss", help="segmentation loss: dice or dice_ce (Dice + cross-entropy)")] = "dice",
    seg_fewshot_lr: Annotated[float, typer.Option("--seg-fewshot-lr", help="few-shot segmentation: the fixed learning rate (no validation)")] = 1e-3,
    save_masks: Annotated[Optional[Path], typer.Option("--save-masks", help="write predicted test masks here: NIfTI with the source affine (3D), PNG (2D)")] = None,
    seg_in_memory: Annotated[bool, typer.Option("--seg-in-memory", help="segmentation: load the patch tokens into memory once instead of streaming them from the store each epoch")] = False,
) -> None:
    """Run probes on cached features only (no backbone is loaded) and append results to --out."""
    from featx.cache.select import StorePick
    from featx.cache.store import StoreError
    from featx.evaluation.features import ProbeError
    from featx.probes.runner import SETTINGS, run_probes

    if config is not None:
        from featx.cli.study import probe_study

        return probe_study(config)
    if out is None:
        raise typer.BadParameter("give --out RESULTS.jsonl (or --config STUDY.yaml)")
    settings = setting or ["knn", "linear"]
    bad = [s for s in settings if s not in SETTINGS]
    if bad:
        raise typer.BadParameter(f"--setting: unknown {bad}; expected some of {list(SETTINGS)}")
    if not store and cache is None:
        raise typer.BadParameter("give --store PATH, or --cache DIR with --dataset and --backbone")
    if cache is not None and (not dataset or not backbone):
        raise typer.BadParameter("--cache needs --dataset and --backbone")
    if multilabel_knn not in ("mlknn", "weighted"):
        raise typer.BadParameter(f"--multilabel-knn: expected mlknn or weighted, got {multilabel_knn!r}")
    if knn_vote not in ("dinov2", "renormalised"):
        raise typer.BadParameter(f"--knn-vote: expected dinov2 or renormalised, got {knn_vote!r}")
    if fewshot_linear not in ("logistic", "sgd"):
        raise typer.BadParameter(f"--fewshot-linear: expected logistic or sgd, got {fewshot_linear!r}")
    check_device(device)

    from featx.probes.segmentation.cli import seg_options

    segmentation = seg_options(seg_lrs, seg_epochs, seg_batch_size, seg_loss, seg_fewshot_lr, save_masks, seg_in_memory)

    def echo(message: str) -> None:
        typer.echo(message, err=True)

    try:
        run = run_probes(
            store,
            cache=cache,
            datasets=dataset or [],
            backbones=backbone or [],
            settings=settings,
            out=out,
            device=device,
            seed=seed,
            ks=_ints(ks, "--ks"),
            k=k,
            temperature=temperature,
            knn_vote=knn_vote,
            multilabel_knn=multilabel_knn,
            knn_backend=knn_backend,
            knn_dtype=knn_dtype,
            mlknn_fit_max=mlknn_fit_max,
            linear_backend=linear_backend,
            epochs=epochs,
            batch_size=batch_size,
            lrs=[float(x) for x in lrs.split(",") if x.strip()],
            shots=_shots(shots),
            fewshot_seeds=fewshot_seeds,
            fewshot_linear=fewshot_linear,
            n_boot=bootstrap,
            val_boot=val_bootstrap,
            record_val=val_records,
            allow_test_reuse=allow_test_reuse,
            pick=StorePick(key=key, size=size, weights=weights, patch_tokens=patch_tokens),
            segmentation=segmentation,
            echo=echo,
        )
    except (ProbeError, StoreError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    typer.echo(f"{len(run.records)} records appended to {out}")
    if run.problems:
        typer.echo(f"{len(run.problems)} problem(s):", err=True)
        for problem in run.problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(EXIT_ERROR if not run.records else EXIT_PARTIAL)
