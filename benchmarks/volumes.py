"""Volumes/s of one 3D encoder: forward-only (tiles already on the device) vs extraction end to end.

    python benchmarks/volumes.py --device cuda --backbone swinunetr3d --tile 96 --shape 160 160 160 --n 4
    python benchmarks/volumes.py --dry-run        # tiny encoder, tiny volumes, CPU: checks it runs through

Extraction is ``featx.pipeline.volume_extract.extract_volumes`` on NIfTI files written at the target
spacing (no resampling): read, HU window, crop/pad, tiles, forward, merge of the overlapping tiles'
maps, pooled features written to a fresh store (``--maps``: the 3D feature maps too). Forward-only
runs the same tiles through the same model with nothing else. Both in float32, the model loaded
beforehand (not timed). Random weights: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from dry_run import add_dry_run, shrink  # benchmarks/dry_run.py, beside this script

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TINY = {"swinunetr3d": {"feature_size": 12, "depths": (1, 1, 1, 1), "num_heads": (1, 1, 1, 1), "window_size": 4},
        "segresnet3d": {"init_filters": 4, "blocks_down": (1, 1, 1)}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backbone", default="swinunetr3d", choices=sorted(TINY))
    parser.add_argument("--tile", type=int, default=96, help="encoder input edge (voxels)")
    parser.add_argument("--shape", type=int, nargs=3, default=[160, 160, 160], help="volume shape after crop/pad")
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--n", type=int, default=4, help="volumes")
    parser.add_argument("--batch", type=int, default=4, help="tiles per forward")
    parser.add_argument("--maps", action="store_true", help="also store the 3D feature maps")
    parser.add_argument("--tiny", action="store_true", help="tiny encoder architecture")
    add_dry_run(parser)
    args = parser.parse_args(argv)
    shrink(args, tiny=True, tile=32, shape=[64, 64, 64], n=2, batch=4)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import pandas as pd

    from featx.backbones.request import BackboneRequest
    from featx.datasets.index import SampleIndex
    from featx.datasets.volumes import VolumePrep, prepare_volume, tile_grid
    from featx.pipeline.volume_extract import extract_volumes, stage_strides

    overrides = tuple(TINY[args.backbone].items()) if args.tiny else ()
    request = BackboneRequest(args.backbone, args.tile, random_init=True, n_last=2, patch_tokens=True,
                              model_overrides=overrides)
    backbone = request.load()  # cached: extract_volumes reuses this very model
    device = torch.device(args.device)
    backbone.model.to(device)
    prep = VolumePrep(tile=args.tile, shape=tuple(args.shape), spacing=(1.5, 1.5, 1.5), overlap=args.overlap)
    starts = tile_grid(prep.shape, prep.tile, prep.overlap, max(stage_strides(backbone, prep, device).values()))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        index = _volumes(root, args.n, tuple(args.shape), SampleIndex, pd)
        image, _ = prepare_volume(index.table["source"][0], prep)
        t = prep.tile
        tiles = torch.from_numpy(np.stack([image[:, z:z + t, y:y + t, x:x + t] for z, y, x in starts])).to(device)
        backbone.model(tiles[: args.batch])  # warm-up
        _sync(device)
        began = time.perf_counter()
        for _ in range(args.n):
            for first in range(0, len(starts), args.batch):
                backbone.model(tiles[first:first + args.batch])
        _sync(device)
        forward = time.perf_counter() - began
        run = extract_volumes(index, request, prep, root / "cache", feature_maps=args.maps, batch=args.batch,
                              device=args.device)
    fwd_rate, ext_rate = args.n / forward, run.volumes_per_second
    print(f"{'backbone':<14} {'tile':>4} {'shape':>12} {'tiles/vol':>9} {'forward vol/s':>13} "
          f"{'extract vol/s':>13} {'ratio':>6}")
    print(f"{args.backbone:<14} {t:>4} {'x'.join(map(str, args.shape)):>12} {len(starts):>9} {fwd_rate:>13.3g} "
          f"{ext_rate:>13.3g} {ext_rate / fwd_rate:>6.2f}")
    print(f"device {args.device}, float32, random weights{', tiny architecture' if args.tiny else ''}, "
          f"{args.n} volumes, batch {args.batch}{', 3D maps stored' if args.maps else ''}")


def _volumes(root: Path, n: int, shape: tuple[int, int, int], sample_index, pd):
    """``n`` random CT-like NIfTI volumes (uncompressed) at 1.5 mm, one row each."""
    import nibabel as nib

    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        path = root / f"v{i}.nii"
        nib.save(nib.Nifti1Image(rng.normal(40, 100, shape).astype(np.float32), np.diag([1.5, 1.5, 1.5, 1.0])), str(path))
        rows.append({"sample_id": f"v{i}", "patient_id": f"p{i}", "split": "train", "source": str(path),
                     "reader": "nifti_volume", "volume_id": f"v{i}", "slice_index": -1, "slice_axis": -1,
                     "mask_source": "", "mask_reader": ""})
    labels = np.eye(2, dtype=np.float32)[np.arange(n) % 2]
    return sample_index("bench3d", "binary", "ct", ["a", "b"], pd.DataFrame(rows), labels)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    main()
