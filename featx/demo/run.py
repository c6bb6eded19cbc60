"""The demo job, a miniature of the paper's study: planted-signal data, three backbones, every probe, one report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featx.demo.data import make_demo_data, make_shapes_task

DEMO_DATASETS = (("xray", "xray"), ("ct", "ct"))  # (dataset name, modality)
# The CSV columns the demo writes as patient metadata (age, sex, view) for subgroup comparisons. The CSV
# adapter treats every extra column as a label unless it is declared as metadata (adapter option
# ``metadata=age,sex,view``); while it does not accept that option the demo writes no such columns.
METADATA_COLUMNS: tuple[str, ...] = ()


@dataclass(frozen=True)
class DemoBackbone:
    """One backbone of the demo: a registered name and the overrides that make it tiny (random weights)."""

    name: str
    family: str
    overrides: dict[str, Any] = field(default_factory=dict)


# Three families, tiny and random-init so the demo runs in about two minutes on two CPU cores. Five blocks
# each: the linear probe's grid reads the last four, the U-Net decoder the last five. A random DINOv2 ViT
# keeps DINOv2's LayerScale init (1e-5), so its blocks barely touch the tokens and CLS is nearly the same
# for every image: LayerScale 1.0 lets the random blocks mix patch information into CLS.
DEMO_BACKBONES = (
    DemoBackbone("dinov2_vits14", "DINOv2 ViT", {"depth": 5, "embed_dim": 64, "num_heads": 2, "init_values": 1.0}),
    DemoBackbone("clip_vitl14", "CLIP ViT", {"layers": 5, "width": 64, "head_width": 32, "embed_dim": 32}),
    DemoBackbone("resnet152", "ResNet CNN", {"layers": [1, 1, 1, 1]}),
)
DEMO_SIZE = 56  # a 4 x 4 patch grid for the ViTs
N_BLOCKS = 5
CLASSIFICATION_SETTINGS = ("knn", "linear", "fewshot")
SEGMENTATION_SETTINGS = ("seg_linear", "seg_unet")
FEWSHOT = {"shots": (2, 8), "fewshot_seeds": 3}
# The MSD-layout task of bright ellipsoids (12 volumes x 5 slices); learning rates chosen on val.
SEG_DEMO = {"n_volumes": 12, "size": 48, "n_slices": 5}
SEG_DEMO_OPTIONS = {"seg_lrs": (1e-2, 1e-1), "seg_epochs": 10, "seg_batch_size": 8}


@dataclass
class DemoResult:
    """What the demo wrote and the table it printed."""

    out: Path
    results: Path
    report: Path
    html: Path  # the self-contained HTML report to open
    figure: Path | None
    stores: dict[str, Path]  # "dataset x backbone" -> store
    table: str
    random_init: bool


def run_demo(
    out: str | Path,
    *,
    backbones: tuple[DemoBackbone, ...] = DEMO_BACKBONES,
    size: int = DEMO_SIZE,
    weights: str | Path | None = None,
    device: str = "cpu",
    segmentation: bool = True,
    workers: int = 2,
    seed: int = 0,
    progress: bool = True,
    echo: Callable[[str], None] | None = print,
) -> DemoResult:
    """Run the whole featx study on the built-in demo data under ``out``.

    Every backbone is extracted on both classification sets (and, with ``segmentation``, on the
    shapes task, patch tokens of the last five blocks); kNN, linear and few-shot probes run on the
    classification stores, the linear and U-Net decoders on the segmentation stores (their predicted
    test masks go to ``out/masks/<backbone>``); the report is built from all of it. Without
    ``weights`` every backbone has random weights and every result says so.
    """
    from featx.datasets import build_index
    from featx.pipeline.pixel_feed import PixelCache
    from featx.report import load_records, summary_table
    from featx.report.build import build_report
    from featx.report.figures import Drawn

    out = Path(out)
    data = make_demo_data(out / "data", seed=seed, metadata=bool(METADATA_COLUMNS))
    options = {"metadata": ",".join(METADATA_COLUMNS)} if METADATA_COLUMNS else {}
    indexes = [build_index("csv", csv_path, name=f"demo_{name}", modality=modality, **options)
               for (name, modality), csv_path in zip(DEMO_DATASETS, (data.xray_csv, data.ct_csv))]
    if segmentation:
        task = make_shapes_task(out / "data", **SEG_DEMO, seed=seed)
        indexes.append(build_index("msd", task, val_fraction=0.2, test_fraction=0.3))
    results = out / "results.jsonl"
    results.unlink(missing_ok=True)
    pixels = PixelCache(out / "cache", workers=workers, progress=progress)
    stores: dict[str, Path] = {}
    random_init = False
    for backbone in backbones:
        made, random_init = _extract(backbone, indexes, out, size, weights, device, workers, seed, progress, pixels, echo)
        stores |= {f"{dataset} x {backbone.name}": path for dataset, path in made.items()}
        classification = [str(p) for d, p in made.items() if d != "msd_shapes"]
        _probe(classification, CLASSIFICATION_SETTINGS, results, seed, device, echo, linear_backend="sklearn", **FEWSHOT)
        if segmentation:
            _probe([str(made["msd_shapes"])], SEGMENTATION_SETTINGS, results, seed, device, echo,
                   save_masks=out / "masks" / backbone.name, **SEG_DEMO_OPTIONS)
    table = summary_table(load_records([results]))
    seg_stores = [p for name, p in stores.items() if name.startswith("msd_shapes x ")]
    masks = [out / "masks"] if segmentation else []  # the decoders' predicted test masks (Figure 6)
    report = build_report([results], out / "report", stores=seg_stores, masks=masks)
    figure = next((f.png for f in report.figures if isinstance(f, Drawn)), None)
    return DemoResult(out, results, report.markdown, report.html, figure, stores, table, random_init)


def _extract(
    backbone: DemoBackbone, indexes: list, out: Path, size: int, weights: str | Path | None, device: str,
    workers: int, seed: int, progress: bool, pixels: Any, echo: Callable[[str], None] | None,
) -> tuple[dict[str, Path], bool]:
    """Extract every demo dataset with ``backbone`` (CLS and patch tokens of the last blocks): dataset -> store."""
    from featx.backbones import load_backbone
    from featx.datasets.preprocess import PreprocessConfig
    from featx.pipeline.extract import extract

    loaded = load_backbone(backbone.name, img_size=size, weights=weights, random_init=weights is None,
                           model_overrides=backbone.overrides or None, n_last=N_BLOCKS, patch_tokens=True, seed=seed)
    made = {}
    for index in indexes:
        preprocess = PreprocessConfig.for_modality(index.modality, size)
        extracted = extract(index, loaded, preprocess, out / "cache", device=device, num_workers=workers,
                            progress=progress, pixel_cache=pixels)
        made[index.dataset] = extracted.path
        if echo is not None and extracted.reused:
            echo(f"{index.dataset} x {backbone.name}: store {extracted.key} up to date in {out / 'cache'}: "
                 "nothing extracted")
    return made, loaded.random_init


def _probe(stores: list[str], settings: tuple[str, ...], results: Path, seed: int, device: str,
           echo: Callable[[str], None] | None, **options: Any) -> None:
    """One probe run over ``stores``; a setting that fails stops the demo (it is the demo's own data)."""
    from featx.probes import ProbeJob, run_probes

    job = ProbeJob(stores=tuple(stores), settings=settings, out=results, seed=seed, device=device, **options)
    probed = run_probes(job, echo=echo)
    if probed.problems:
        raise RuntimeError(f"demo probes failed: {'; '.join(probed.problems)}")
