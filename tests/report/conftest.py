"""Constructed result records for report tests: one builder, written as real JSON-lines files."""

import json

import pytest


def record(**fields):
    """A test-split headline record (classification, linear probe) with every provenance field."""
    base = {"dataset": "nih", "backbone": "dinov2_vitl14", "setting": "linear", "split": "test",
            "metric": "auroc_macro", "value": 0.76, "ci_low": 0.75, "ci_high": 0.77, "random_init": False,
            "weights_hash": "a" * 64, "img_size": 224, "store_key": "k-nih-l14", "seed": 0,
            "hyperparameters": {"backend": "torch", "lr": 0.01}, "label_names": ["a", "b"],
            "featx_version": "0.1.0", "created": "2026-11-27T10:00:00+00:00"}
    return base | fields


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def seg(dataset, backbone, decoder, value, **fields):
    """A segmentation record as helper #10 is expected to write it (headline metric dice_jaccard_mean)."""
    return record(dataset=dataset, backbone=backbone, setting=f"seg_{decoder}", metric="dice_jaccard_mean",
                  value=value, ci_low=value - 0.02, ci_high=value + 0.02, store_key=f"k-{dataset}-{backbone}",
                  hyperparameters={"decoder": decoder, "lr": 0.01}, label_names=["organ"], **fields)


def fewshot(dataset, backbone, shots, value, std):
    return record(dataset=dataset, backbone=backbone, setting="fewshot-linear", value=value, ci_low=value - 0.05,
                  ci_high=value + 0.05, aggregate="mean_over_seeds", macro_std=std,
                  store_key=f"k-{dataset}-{backbone}", hyperparameters={"shots": shots, "backend": "sklearn"})


@pytest.fixture
def full_records():
    """Two backbones on two classification and two segmentation datasets, few-shot and fine-tuning."""
    return make_full_records()


def make_full_records():
    """Two backbones on two classification and two segmentation datasets, few-shot and fine-tuning."""
    rows = []
    for backbone, shift in (("dinov2_vitl14", 0.05), ("densenet201", 0.0)):
        for dataset, base in (("nih", 0.70), ("chexpert", 0.78)):
            key = f"k-{dataset}-{backbone}"
            rows.append(record(dataset=dataset, backbone=backbone, value=base + shift, ci_low=base + shift - 0.01,
                               ci_high=base + shift + 0.01, store_key=key))
            rows.append(record(dataset=dataset, backbone=backbone, setting="knn", value=base + shift - 0.03,
                               ci_low=base + shift - 0.05, ci_high=base + shift - 0.01, store_key=key,
                               hyperparameters={"k": 20, "backend": "faiss"}))
            for shots, gain in (("1", 0.0), ("4", 0.05), ("all", 0.1)):
                rows.append(fewshot(dataset, backbone, shots, base - 0.1 + gain + shift, 0.03))
        for dataset, base in (("spleen", 0.80), ("heart", 0.70)):
            rows.append(seg(dataset, backbone, "linear", base + shift))
            rows.append(seg(dataset, backbone, "unet", base + 0.08 - shift))
    rows.append(record(setting="finetune-lora", value=0.80, ci_low=0.79, ci_high=0.81, trainable_params=1_000,
                       total_params=1_000_000, store_key=None))
    return rows


@pytest.fixture(scope="session")
def full_report(tmp_path_factory):
    """The report of ``make_full_records`` plus one random-weights backbone, built once for the tests that read it."""
    from featx.report.build import build_report

    root = tmp_path_factory.mktemp("report")
    results = write(root / "r.jsonl", make_full_records() + [record(backbone="vit_random", random_init=True,
                                                                    weights_hash="random-init", store_key="rnd")])
    return build_report([results], root / "report")
