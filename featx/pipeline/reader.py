"""Reader stage: sample rows -> uint8 model inputs, in DataLoader worker processes.

A sample that cannot be read does not stop the run: it comes back flagged with
its error, and the writer stores it as a failed row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from featx.datasets.preprocess import PreprocessConfig, resize_mask, to_model_input
from featx.datasets.readers import load_sample


class SampleDataset(Dataset):
    """Rows of a sample table, decoded and preprocessed on access."""

    def __init__(self, table: pd.DataFrame, config: PreprocessConfig, with_masks: bool) -> None:
        self.rows = table.to_dict("records")
        self.config = config
        self.with_masks = with_masks

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, object]:
        row = self.rows[i]
        size = self.config.size
        try:
            image, mask = load_sample(row)
            pixels = to_model_input(image, self.config)
            error = ""
            if self.with_masks:
                mask = resize_mask(mask, size) if mask is not None else np.zeros((size, size), np.uint8)
        except Exception as exc:  # any decoding failure is recorded for this row, the run goes on
            message = str(exc)
            error = message if str(row["source"]) in message else f"{row['source']}: {message}"
            pixels = np.zeros((3, size, size), np.uint8)
            mask = np.zeros((size, size), np.uint8)
        item: dict[str, object] = {"row": i, "pixels": torch.from_numpy(pixels), "error": error}
        if self.with_masks:
            item["mask"] = torch.from_numpy(mask)
        return item


class BlockBatchSampler(Sampler[list[int]]):
    """Batches that never cross a block boundary, for the given blocks in order.

    A block's batches are the same whether it is extracted in a full run, after a
    resume or in an incremental rebuild, so every computed row is computed exactly as
    in a fresh run (on a GPU a row's numbers depend on the batch it is in). Batches
    whose rows are all flagged in ``skip`` (copied from an earlier store) are left
    out; the others are computed whole, and their copied rows dropped afterwards.
    """

    def __init__(
        self, blocks: Sequence[int], block_rows: int, n_rows: int, batch_size: int, skip: np.ndarray | None = None
    ) -> None:
        self.batches: list[list[int]] = []
        for block in blocks:
            rows = np.arange(block * block_rows, min((block + 1) * block_rows, n_rows))
            batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
            self.batches += [b.tolist() for b in batches if skip is None or not skip[b].all()]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)
