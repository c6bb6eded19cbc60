"""Figures drawn from stores and mask folders: PCA of patch tokens (Figure 2), predicted masks (Figure 6)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from featx.report.figures import DPI, Figure, Missing, plt, save

MASK_SUFFIXES = (".nii.gz", ".nii", ".png")
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm", ".mat")


def _open(path: Path):
    from featx.cache import FeatureStore

    return FeatureStore.open(path)


def pick_rows(store, n: int) -> np.ndarray:
    """``n`` readable rows spread over the store, test rows first (deterministic)."""
    valid = np.flatnonzero(store.valid)
    split = store.index["split"].to_numpy()[valid]
    ordered = np.concatenate([valid[split == "test"], valid[split != "test"]])
    if len(ordered) <= n:
        return ordered
    return ordered[np.linspace(0, len(ordered) - 1, n).round().astype(int)]


def store_image(store, row: int) -> np.ndarray | str:
    """The row's image as the backbone saw it (grey, [0, 1], extraction size), or why it cannot be shown."""
    from featx.datasets import DatasetError
    from featx.datasets.preprocess import PreprocessConfig, to_model_input
    from featx.datasets.readers import load_sample

    record = store.index.iloc[int(row)].to_dict()
    try:
        image, _ = load_sample(record)
        config = PreprocessConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in store.preprocessing.items()})
        return to_model_input(image, config)[0].astype(np.float32) / 255.0
    except (DatasetError, OSError, KeyError, TypeError, ValueError) as error:
        return f"image not readable: {error}"


def pca_rgb(tokens: np.ndarray) -> np.ndarray:
    """Patch tokens ``(n, h, w, D)`` -> ``(n, h, w, 3)`` RGB in [0, 1]: the first component separates foreground,
    the first three components of the foreground patches give the colours; background is black.

    One PCA over all patches of the samples given (the paper computes it per column of similar scans).
    The first component's sign is chosen so that border patches (mostly background in scans) fall below 0.
    """
    n, h, w, d = tokens.shape
    flat = tokens.reshape(-1, d).astype(np.float64)
    flat = flat - flat.mean(axis=0)
    first = np.linalg.svd(flat, full_matrices=False)[2][0]
    score = (flat @ first).reshape(n, h, w)
    border = np.concatenate([score[:, 0].ravel(), score[:, -1].ravel(), score[:, :, 0].ravel(), score[:, :, -1].ravel()])
    if border.mean() > 0:
        score = -score
    foreground = score > 0
    rgb = np.zeros((n, h, w, 3))
    if foreground.sum() >= 3:
        patches = tokens.reshape(-1, d)[foreground.ravel()].astype(np.float64)
        centred = patches - patches.mean(axis=0)
        components = np.linalg.svd(centred, full_matrices=False)[2][:3]
        colours = centred @ components.T
        if colours.shape[1] < 3:
            colours = np.pad(colours, ((0, 0), (0, 3 - colours.shape[1])))
        low, high = colours.min(axis=0), colours.max(axis=0)
        rgb[foreground] = (colours - low) / np.where(high > low, high - low, 1.0)
    return rgb


def _patch_layer(store) -> str | None:
    layers = [layer for layer in store.layers if f"features/{layer}/patch" in store.group]
    return layers[-1] if layers else None


def _show(ax: plt.Axes, image: np.ndarray | str, title: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=7)
    if isinstance(image, str):
        ax.text(0.5, 0.5, image, ha="center", va="center", fontsize=5, wrap=True, transform=ax.transAxes)
    else:
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")


def pca_figure(stores: list[Path], out_dir: Path, samples: int = 4) -> Figure:
    """Figure 2: for each store, its images over the PCA-of-patch-tokens RGB of the same samples."""
    key, title = "fig2_pca", "Figure 2: first three PCA components of the patch tokens (background thresholded)"
    if not stores:
        return Missing(key, title, "needs a feature store with patch tokens: `featx report ... --store STORE` "
                                   "of a store extracted with `featx extract --patch-tokens`")
    drawn, skipped = [], []
    for path in stores:
        store = _open(path)
        label = f"{store.dataset} / {store.backbone_name}"  # the store, not the machine's path to it
        layer = _patch_layer(store)
        if layer is None:
            skipped.append(f"{label} ({Path(path).name}): no patch tokens stored (extract with --patch-tokens)")
            continue
        rows = pick_rows(store, samples)
        if len(rows) == 0:
            skipped.append(f"{label} ({Path(path).name}): no readable rows")
            continue
        tokens = store.read_patch(layer, np.sort(rows))
        order = np.argsort(np.argsort(rows))
        rgb = pca_rgb(tokens[order])
        drawn.append((f"{label}\n({layer})", [store_image(store, r) for r in rows], rgb))
    if not drawn:
        return Missing(key, title, "; ".join(skipped))
    columns = max(len(images) for _, images, _ in drawn)
    fig, axes = plt.subplots(2 * len(drawn), columns, figsize=(1.2 + 1.6 * columns, 1.6 * 2 * len(drawn)), squeeze=False,
                             dpi=DPI)
    for s, (name, images, rgb) in enumerate(drawn):
        for c in range(columns):
            top, bottom = axes[2 * s, c], axes[2 * s + 1, c]
            if c >= len(images):
                top.set_visible(False)
                bottom.set_visible(False)
                continue
            _show(top, images[c], "")
            _show(bottom, rgb[c], "")
        # each row says what it shows at its left, beside it (a caption above a row reads as the row before's)
        axes[2 * s, 0].set_ylabel(f"{name}\nimage", fontsize=7)
        axes[2 * s + 1, 0].set_ylabel("PCA RGB", fontsize=7)
    figure = save(fig, out_dir, key, title)
    figure.note = "; ".join(skipped)
    return figure


def _normalise(name: str) -> str:
    """A sample, volume or mask file name reduced to lower-case words: image suffixes (repeated ones too) dropped."""
    lowered = name.lower()
    changed = True
    while changed:
        changed = False
        for suffix in IMAGE_SUFFIXES:
            if lowered.endswith(suffix) or suffix + "#" in lowered:
                lowered = lowered.replace(suffix + "#", "#")
                lowered = lowered[: -len(suffix)] if lowered.endswith(suffix) else lowered
                changed = True
    return re.sub(r"[^a-z0-9]+", "_", lowered).strip("_")


def _mask_files(folder: Path) -> dict[str, Path]:
    found = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name.lower().endswith(MASK_SUFFIXES):
            found[_normalise(path.name)] = path
    return found


def decoder_folders(folders: list[Path]) -> dict[str, dict[str, Path]]:
    """Decoder -> {normalised sample name: mask file}: every folder holding mask files is one decoder, named by its
    path under the folder given (``--save-masks DIR`` writes ``DIR/<dataset>/<setting>/``)."""
    decoders: dict[str, dict[str, Path]] = {}
    for folder in folders:
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such mask folder (give the folder `--save-masks` wrote)")
        for sub in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]:
            files = _mask_files(sub)
            if files:
                name = sub.relative_to(folder).as_posix() if sub != folder else folder.name
                decoders[name if name != "." else folder.name] = files
    return decoders


def _for_dataset(decoders: dict[str, dict[str, Path]], dataset: str) -> dict[str, dict[str, Path]]:
    """The decoders under a folder named after the store's dataset, if there are any, else all of them."""
    mine = {name.split("/", 1)[1]: files for name, files in decoders.items() if name.startswith(f"{dataset}/")}
    return mine or decoders


def read_mask(path: Path, row: dict) -> np.ndarray | str:
    """A predicted mask as class ids (a PNG, a 2D NIfTI, or the row's slice of a NIfTI volume), or why it cannot be read."""
    import nibabel as nib

    from featx.datasets import DatasetError
    from featx.datasets.readers import load_canonical_volume, volume_slice

    try:
        if path.name.lower().endswith(".png"):
            mask = np.asarray(Image.open(path))
            return (mask[..., 0] if mask.ndim == 3 else mask).astype(np.int64)
        data = np.asarray(nib.load(str(path)).dataobj)
        if data.ndim == 2:
            return data.astype(np.int64)
        volume = load_canonical_volume(str(path))
        return volume_slice(volume, int(row["slice_axis"]), int(row["slice_index"])).astype(np.int64)
    except (OSError, ValueError, IndexError, DatasetError, nib.filebasedimages.ImageFileError) as error:
        return f"mask not readable: {path.name}: {error}"


def _names(row: dict) -> list[str]:
    names = [row["sample_id"], Path(str(row["sample_id"]).split("#")[0]).name + (
        "#" + str(row["sample_id"]).split("#", 1)[1] if "#" in str(row["sample_id"]) else "")]
    if row.get("volume_id"):
        names += [row["volume_id"], Path(str(row["volume_id"])).name]
    return list(dict.fromkeys(_normalise(str(n)) for n in names))


def _overlay(ax: plt.Axes, image: np.ndarray | str, mask: np.ndarray | str, title: str) -> None:
    if isinstance(image, str) or isinstance(mask, str):
        _show(ax, mask if isinstance(mask, str) else image, title)
        return
    if image.shape != mask.shape:
        image = np.asarray(Image.fromarray(image.astype(np.float32), mode="F").resize(mask.shape[::-1]))
    _show(ax, image, title)
    ax.imshow(np.ma.masked_equal(mask, 0), cmap="tab10", vmin=0, vmax=9, alpha=0.55, interpolation="nearest")


def mask_figure(stores: list[Path], mask_folders: list[Path], out_dir: Path, samples: int = 4) -> Figure:
    """Figure 6: predicted masks of each decoder over the image (and the ground truth where the store has it)."""
    key, title = "fig6_masks", "Figure 6: predicted masks over the image, per decoder"
    if not mask_folders:
        return Missing(key, title, "needs predicted masks: `featx report ... --masks DIR` with the folder "
                                   "`--save-masks DIR` wrote (one sub-folder per decoder, PNG or NIfTI)")
    if not stores:
        return Missing(key, title, "needs the store the masks were predicted on (`--store STORE`) to draw the images")
    decoders = decoder_folders(mask_folders)
    chosen = []
    for path in stores:
        store = _open(path)
        index = store.index
        valid = store.valid
        mine = _for_dataset(decoders, store.dataset)
        for row_number in range(len(index)):
            row = index.iloc[row_number].to_dict()
            files = {name: next((d[n] for n in _names(row) if n in d), None) for name, d in mine.items()}
            if valid[row_number] and all(files.values()):
                chosen.append((store, row_number, row, files))
            if len(chosen) >= samples:
                break
    if not chosen:
        names = ", ".join(f"{name} ({len(files)} files)" for name, files in decoders.items())
        return Missing(key, title, f"no sample of the given stores has a mask in every decoder folder ({names}); "
                                   "mask files are matched to sample ids by name")
    has_truth = all("masks" in store.group for store, *_ in chosen)
    columns = max(len(files) for *_, files in chosen) + (1 if has_truth else 0)
    fig, axes = plt.subplots(len(chosen), columns, figsize=(2.0 * columns, 2.1 * len(chosen)), squeeze=False, dpi=DPI)
    for r, (store, row_number, row, files) in enumerate(chosen):
        image = store_image(store, row_number)
        c = 0
        if has_truth:
            _overlay(axes[r, 0], image, store.read_masks(np.array([row_number]))[0].astype(np.int64),
                     "ground truth" if r == 0 else "")
            c = 1
        for name, path in files.items():
            _overlay(axes[r, c], image, read_mask(path, row), name if r == 0 else "")
            c += 1
        axes[r, 0].set_ylabel(str(row["sample_id"])[-24:], fontsize=6)
    return save(fig, out_dir, key, title)

