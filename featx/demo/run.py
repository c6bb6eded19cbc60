"""The demo job, a miniature of the paper's study: planted-signal data, three backbones, every probe, one report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featx.demo.data import make_demo_data, make_shapes_task
from featx.pipeline.job import ExtractJob, run_extract
from featx.probes.job import ProbeJob

DEMO_DATASETS = (("xray", "xray"), ("ct", "ct"))  # (dataset name, modality)
# The CSV columns the demo writes as patient metadata, declared to the CSV adapter (``metadata=age,sex,view``):
# kept in the index and the stores, they give the report its subgroup table.
METADATA_COLUMNS: tuple[str, ...] = ("age", "sex", "view")


@dataclass(frozen=True)
class DemoBackbone:
    """One backbone of the demo: a registered name and the overrides that make it tiny (random weights)."""

    name: str
    family: str
    overrides: dict[str, Any] = field(default_factory=dict)
    segments: bool = True  # its patch tokens feed the decoders (a CNN's 2048-wide last stage makes a U-Net too big)


# Three families, tiny and random-init so the demo runs in about two minutes on two CPU cores. Five blocks
# each: the linear probe's grid reads the last four, the U-Net decoder the last five. A random DINOv2 ViT
# keeps DINOv2's LayerScale init (1e-5), so its blocks barely touch the tokens and CLS is nearly the same
# for every image: LayerScale 1.0 lets the random blocks mix patch information into CLS.
DEMO_BACKBONES = (
    DemoBackbone("dinov2_vits14", "DINOv2 ViT", {"depth": 5, "embed_dim": 64, "num_heads": 2, "init_values": 1.0}),
    DemoBackbone("clip_vitl14", "CLIP ViT", {"layers": 5, "width": 64, "head_width": 32, "embed_dim": 32}),
    DemoBackbone("resnet152", "ResNet CNN", {"layers": [1, 1, 1, 1]}, segments=False),
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
    from featx.cache import FeatureStore
    from featx.probes.runner import run_probes
    from featx.report import load_records, summary_table
    from featx.report.build import build_report
    from featx.report.figures import Drawn

    out = Path(out)
    results = out / "results.jsonl"
    results.unlink(missing_ok=True)
    stores: dict[str, Path] = {}
    random_init = weights is None
    for extract_jobs, probe_jobs in demo_jobs(out, backbones=backbones, size=size, weights=weights, device=device,
                                              segmentation=segmentation, workers=workers, seed=seed, progress=progress):
        made = [run_extract(job, echo=echo or (lambda _: None)).path for job in extract_jobs]
        stores |= {f"{FeatureStore.open(path).dataset} x {job.backbone}": path
                   for job, path in zip(extract_jobs, made, strict=True)}
        for probe in probe_jobs(made):
            probed = run_probes(probe, echo=echo)
            if probed.problems:  # the demo's own data: a setting that fails is a bug
                raise RuntimeError(f"demo probes failed: {'; '.join(probed.problems)}")
    table = summary_table(load_records([results]))
    seg_stores = [p for name, p in stores.items() if name.startswith("msd_shapes x ")]
    masks = [out / "masks"] if segmentation else []  # the decoders' predicted test masks (Figure 6)
    report = build_report([results], out / "report", stores=seg_stores, masks=masks)
    figure = next((f.png for f in report.figures if isinstance(f, Drawn)), None)
    return DemoResult(out, results, report.markdown, report.html, figure, stores, table, random_init)


def _metadata(modality: str) -> dict[str, str]:
    """The CSV adapter's ``metadata`` option for a demo dataset (CT volumes have no view position)."""
    columns = [c for c in METADATA_COLUMNS if not (modality == "ct" and c == "view")]
    return {"metadata": ",".join(columns)} if columns else {}


def demo_jobs(
    out: Path, *, backbones: tuple[DemoBackbone, ...] = DEMO_BACKBONES, size: int = DEMO_SIZE,
    weights: str | Path | None = None, device: str = "cpu", segmentation: bool = True, workers: int = 2, seed: int = 0,
    progress: bool = True,
) -> list[tuple[list[ExtractJob], Callable[[list[Path]], list[ProbeJob]]]]:
    """Per backbone: its extraction jobs (one per demo dataset), and the probe jobs on the stores they make.

    The same typed jobs `featx extract` and `featx probe` build from their flags (writes the demo data first).
    """
    data = make_demo_data(out / "data", seed=seed, metadata=bool(METADATA_COLUMNS))
    sources = [("csv", csv, {"name": f"demo_{name}", "modality": modality, **_metadata(modality)})
               for (name, modality), csv in zip(DEMO_DATASETS, (data.xray_csv, data.ct_csv), strict=True)]
    if segmentation:
        sources.append(("msd", make_shapes_task(out / "data", **SEG_DEMO, seed=seed),
                        {"val_fraction": 0.2, "test_fraction": 0.3}))
    results = out / "results.jsonl"
    plan = []
    for backbone in backbones:
        extract_jobs = [
            ExtractJob(dataset=adapter, root=root, backbone=backbone.name, cache=out / "cache", size=size,
                       weights=weights, random_init=weights is None, device=device, workers=workers, n_last=N_BLOCKS,
                       patch_tokens=backbone.segments, options=options, model_overrides=backbone.overrides,
                       decode_workers=workers,
                       progress=progress)
            for adapter, root, options in sources if adapter == "csv" or backbone.segments
        ]

        def probes(stores: list[Path], masks: Path = out / "masks" / backbone.name) -> list[ProbeJob]:
            common = {"out": results, "seed": seed, "device": device}
            jobs = [ProbeJob(stores=[str(s) for s in stores[:2]], settings=CLASSIFICATION_SETTINGS,
                             linear_backend="sklearn", **FEWSHOT, **common)]
            if len(stores) > 2:
                jobs.append(ProbeJob(stores=[str(stores[2])], settings=SEGMENTATION_SETTINGS, save_masks=masks,
                                     **SEG_DEMO_OPTIONS, **common))
            return jobs

        plan.append((extract_jobs, probes))
    return plan
