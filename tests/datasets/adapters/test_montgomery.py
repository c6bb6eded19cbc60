import numpy as np

from featx.datasets import build_index, load_sample
from tests.datasets.fixtures import make_montgomery, write_png


def test_index_and_three_class_masks(tmp_path):
    root = make_montgomery(tmp_path, n_images=8)
    idx = build_index("montgomery", tmp_path)  # the parent of MontgomerySet works too
    assert idx.task == "segmentation" and idx.label_names == ["background", "left lung", "right lung"]
    assert len(idx) == 8 and idx.labels.shape == (8, 0)
    assert set(idx.table["split"]) == {"train", "val", "test"}
    assert idx.table["patient_id"].tolist() == [f"MCUCXR_{i:04d}" for i in range(1, 9)]
    image, mask = load_sample(idx.table.iloc[0].to_dict())
    assert image.shape == mask.shape == (16, 16)
    assert set(np.unique(mask)) == {0, 1, 2}
    assert (mask[:, 10:] != 2).all() and (mask[:, :6] != 1).all()  # left lung on the image's right side
    assert root.name == "MontgomerySet"


def test_missing_and_mismatched_masks_are_quarantined(tmp_path):
    root = make_montgomery(tmp_path, n_images=6)
    (root / "ManualMask" / "rightMask" / "MCUCXR_0002_0.png").unlink()
    write_png(root / "ManualMask" / "leftMask" / "MCUCXR_0003_1.png", np.zeros((8, 8), np.uint8))
    idx = build_index("montgomery", root)
    messages = [str(p) for p in idx.problems]
    assert any("MCUCXR_0002_0.png" in m and "not found" in m for m in messages)
    assert any("leftMask/MCUCXR_0003_1.png" in m and "differs from image" in m and "CXR_png/MCUCXR_0003_1.png" in m
               for m in messages)
    assert len(idx) == 4
