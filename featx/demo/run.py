"""The demo job: generate planted-signal data, extract, probe, report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

from featx.demo.data import make_demo_data, make_shapes_task

DEMO_DATASETS = (("xray", "xray"), ("ct", "ct"))  # (dataset name, modality)
# A random DINOv2 ViT keeps DINOv2's LayerScale init (1e-5): its blocks barely touch the
# tokens and the CLS output is nearly the same for every image. LayerScale 1.0 lets the
# random blocks mix patch information into CLS, so CLS-based kNN sees the planted signal.
RANDOM_DEMO_OVERRIDES: dict[str, Any] = {"init_values": 1.0}
# The segmentation demo: an MSD-layout task of bright ellipsoids (12 volumes x 5 slices), extracted
# at 56 px (a 4 x 4 patch grid) with the patch tokens of the last block, and the linear decoder
# (lr chosen on val). Its random backbone keeps the default LayerScale: the patch tokens then stay
# close to the patch embeddings, which is what a decoder reads (the 1.0 above is for CLS probes).
# The U-Net decoder at ViT-S width (D = 384) costs minutes of CPU here, so the demo leaves it out.
SEG_DEMO = {"n_volumes": 12, "size": 48, "n_slices": 5}
SEG_DEMO_SIZE = 56
SEG_DEMO_LRS = (1e-2, 1e-1)
SEG_DEMO_EPOCHS = 15


@dataclass
class DemoResult:
    """What the demo wrote and the table it printed."""

    out: Path
    results: Path
    report: Path
    html: Path  # the self-contained HTML report to open
    figure: Path | None
    stores: dict[str, Path]
    table: str
    random_init: bool


def run_demo(
    out: str | Path,
    *,
    backbone: str = "dinov2_vits14",
    size: int = 112,
    weights: str | Path | None = None,
    device: str = "cpu",
    model_overrides: dict[str, Any] | None = None,
    settings: tuple[str, ...] = ("knn", "linear"),
    segmentation: bool = True,
    workers: int = 2,
    seed: int = 0,
    progress: bool = True,
    echo: Callable[[str], None] | None = print,
) -> DemoResult:
    """Run the whole featx job on the built-in demo data under ``out``.

    Without ``weights`` the backbone has random weights (the demo data needs no
    pretrained features to be learnable) with ``RANDOM_DEMO_OVERRIDES`` unless
    ``model_overrides`` is given; every result then says so. With ``segmentation`` a
    third, segmentation dataset is extracted with patch tokens and the linear decoder is
    trained on it (a Dice table follows the AUROC table).
    """
    from featx.backbones import load_backbone
    from featx.datasets import build_index
    from featx.pipeline.extract import extract
    from featx.datasets.preprocess import PreprocessConfig
    from featx.probes import ProbeJob, run_probes
    from featx.report import load_records, summary_table
    from featx.report.build import build_report
    from featx.report.figures import Drawn

    out = Path(out)
    data = make_demo_data(out / "data", seed=seed)
    if weights is None and model_overrides is None:
        model_overrides = RANDOM_DEMO_OVERRIDES
    loaded = load_backbone(
        backbone,
        img_size=size,
        weights=weights,
        random_init=weights is None,
        model_overrides=model_overrides,
        seed=seed,
    )
    results = out / "results.jsonl"
    results.unlink(missing_ok=True)
    stores: dict[str, Path] = {}
    for (name, modality), csv_path in zip(DEMO_DATASETS, (data.xray_csv, data.ct_csv)):
        index = build_index("csv", csv_path, name=f"demo_{name}", modality=modality)
        preprocess = PreprocessConfig.for_modality(modality, size)
        extracted = extract(
            index, loaded, preprocess, out / "cache", device=device, num_workers=workers, progress=progress
        )
        stores[index.dataset] = extracted.path
        if echo is not None and extracted.reused:
            echo(f"{index.dataset}: store {extracted.key} up to date in {out / 'cache'}: nothing extracted")
        # The demo sets are small (tens of volumes): the paper's 10-epoch SGD grid takes ~10 steps on
        # them and under-fits, so the demo uses the scikit-learn reference (recorded in every result).
        job = ProbeJob(stores=(str(extracted.path),), settings=settings, out=results, seed=seed, device=device,
                       linear_backend="sklearn")
        probed = run_probes(job, echo=echo)
        if probed.problems:
            raise RuntimeError(f"demo probes failed on {index.dataset}: {'; '.join(probed.problems)}")
    if segmentation:
        stores.update(_segmentation_demo(out, backbone, weights, model_overrides if model_overrides is not RANDOM_DEMO_OVERRIDES else None,
                                         device, workers, seed, progress, results, echo))
    table = summary_table(load_records([results]))
    masks = [out / "masks"] if (out / "masks").is_dir() else []  # the demo decoder's predicted test masks (Figure 6)
    report = build_report([results], out / "report", stores=list(stores.values()), masks=masks)
    figure = next((f.png for f in report.figures if isinstance(f, Drawn)), None)
    return DemoResult(out, results, report.markdown, report.html, figure, stores, table, loaded.random_init)


def _segmentation_demo(
    out: Path, backbone: str, weights: str | Path | None, overrides: dict[str, Any] | None, device: str, workers: int,
    seed: int, progress: bool, results: Path, echo: Callable[[str], None] | None,
) -> dict[str, Path]:
    """Extract the shapes task with the last block's patch tokens and train the linear decoder on it."""
    from featx.backbones import load_backbone
    from featx.datasets import build_index
    from featx.pipeline.extract import extract
    from featx.datasets.preprocess import PreprocessConfig
    from featx.probes import ProbeJob, run_probes

    index = build_index("msd", make_shapes_task(out / "data", **SEG_DEMO, seed=seed), val_fraction=0.2, test_fraction=0.3)
    loaded = load_backbone(backbone, img_size=SEG_DEMO_SIZE, weights=weights, random_init=weights is None, n_last=1,
                           patch_tokens=True, model_overrides=overrides, seed=seed)
    preprocess = PreprocessConfig.for_modality(index.modality, SEG_DEMO_SIZE)
    extracted = extract(index, loaded, preprocess, out / "cache", device=device, num_workers=workers, progress=progress)
    if echo is not None and extracted.reused:
        echo(f"{index.dataset}: store {extracted.key} up to date in {out / 'cache'}: nothing extracted")
    job = ProbeJob(stores=(str(extracted.path),), settings=("seg_linear",), out=results, seed=seed, device=device,
                   seg_lrs=SEG_DEMO_LRS, seg_epochs=SEG_DEMO_EPOCHS, seg_batch_size=8, save_masks=out / "masks")
    probed = run_probes(job, echo=echo)
    if probed.problems:
        raise RuntimeError(f"demo decoder failed on {index.dataset}: {'; '.join(probed.problems)}")
    return {index.dataset: extracted.path}
