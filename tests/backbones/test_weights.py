"""featx.backbones.weights: reading, hashing, strict checks and offline cache lookup."""

from __future__ import annotations

import collections
import hashlib
import socket
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from featx.backbones.weights import (
    WeightCandidate,
    WeightsError,
    check_state_dict,
    featx_weights_dir,
    find_pretrained,
    hf_cache_dir,
    read_state_dict,
    save_state_dict,
    sha256_file,
    strip_prefixes,
    torch_hub_checkpoints_dir,
    unwrap_checkpoint,
)


def _sd():
    g = torch.Generator().manual_seed(1)
    return {"a.weight": torch.randn(4, 3, generator=g), "a.bias": torch.randn(4, generator=g),
            "b.weight": torch.randn(2, 4, generator=g)}


@pytest.mark.parametrize("suffix", [".safetensors", ".pth", ".bin"])
def test_roundtrip_is_bit_identical(tmp_path, suffix):
    sd = _sd()
    path = save_state_dict(sd, tmp_path / f"w{suffix}")
    back = read_state_dict(path)
    assert set(back) == set(sd)
    for key in sd:
        assert torch.equal(back[key], sd[key])


def test_sha256_is_content_hash(tmp_path):
    path = save_state_dict(_sd(), tmp_path / "w.safetensors")
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(path.read_bytes())
    assert sha256_file(copy) == sha256_file(path)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_truncated_file_fails_clearly(tmp_path, suffix):
    path = save_state_dict(_sd(), tmp_path / f"w{suffix}")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError) as err:
        read_state_dict(path)
    assert str(path) in str(err.value)
    assert "truncated or corrupt" in str(err.value)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(WeightsError, match="empty"):
        read_state_dict(empty)
    with pytest.raises(WeightsError, match="does not exist"):
        read_state_dict(tmp_path / "nope.safetensors")


class _Evil:
    pass


def test_pickle_needing_code_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": _sd(), "args": _Evil()}, path)
    with pytest.raises(WeightsError, match="FEATX_ALLOW_PICKLE"):
        read_state_dict(path)
    monkeypatch.setenv("FEATX_ALLOW_PICKLE", "1")
    assert set(read_state_dict(path)) == set(_sd())


def test_unwrap_prefers_named_entry_and_ignores_non_tensors(tmp_path):
    sd = _sd()
    other = {k: v + 1 for k, v in sd.items()}
    checkpoint = {"encoder": other, "target_encoder": sd, "epoch": 3, "lr": 0.1}
    got = unwrap_checkpoint(checkpoint, tmp_path / "x", prefer=("target_encoder",))
    assert all(torch.equal(got[k], sd[k]) for k in sd)
    with pytest.raises(WeightsError, match="container"):
        unwrap_checkpoint({"a": sd, "b": other}, tmp_path / "x")
    assert set(unwrap_checkpoint({"model": sd, "epoch": 1}, tmp_path / "x")) == set(sd)


def test_strip_prefix_only_when_all_keys_carry_it():
    sd = {"module.a": torch.zeros(1), "module.b": torch.zeros(1)}
    assert set(strip_prefixes(sd, ("module.",))) == {"a", "b"}
    mixed = {"module.a": torch.zeros(1), "b": torch.zeros(1)}
    assert set(strip_prefixes(mixed, ("module.",))) == set(mixed)


def test_check_names_first_mismatch_in_model_order():
    expected = collections.OrderedDict([("a.weight", (4, 3)), ("a.bias", (4,)), ("b.weight", (2, 4))])
    check_state_dict(_sd(), expected, "f.pth", "toy")  # fits: no error
    bad = _sd()
    bad["a.bias"] = torch.zeros(5)
    bad["b.weight"] = torch.zeros(3, 4)
    with pytest.raises(WeightsError) as err:
        check_state_dict(bad, expected, "f.pth", "toy")
    msg = str(err.value)
    assert "f.pth" in msg and "'a.bias'" in msg and "(5,)" in msg and "(4,)" in msg
    assert "2 shape mismatches" in msg
    missing = {k: v for k, v in _sd().items() if k != "a.weight"}
    with pytest.raises(WeightsError, match="'a.weight'.*missing"):
        check_state_dict(missing, expected, "f.pth", "toy")
    extra = {**_sd(), "c.weight": torch.zeros(1)}
    with pytest.raises(WeightsError, match="'c.weight'.*no place"):
        check_state_dict(extra, expected, "f.pth", "toy")


def test_cache_folders_follow_environment(isolated_caches):
    assert featx_weights_dir() == isolated_caches / "featx"
    assert hf_cache_dir() == isolated_caches / "hf" / "hub"
    assert torch_hub_checkpoints_dir() == isolated_caches / "torch" / "hub" / "checkpoints"


def _fake_hf_file(repo_id: str, filename: str, content: bytes) -> Path:
    """Lay a file out the way huggingface_hub caches it (blobs / snapshots / refs)."""
    repo_dir = hf_cache_dir() / ("models--" + repo_id.replace("/", "--"))
    revision = "0123456789abcdef0123456789abcdef01234567"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(revision)
    snapshot = repo_dir / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (snapshot / filename).write_bytes(content)
    return snapshot / filename


def test_find_pretrained_in_each_cache():
    hf = WeightCandidate("hf", "model.safetensors", "timm/some_model.tag")
    hub = WeightCandidate("torch_hub", "some_model.pth")
    own = WeightCandidate("featx", "some.safetensors")
    with pytest.raises(WeightsError):
        find_pretrained("some", [own, hf, hub])
    hub_path = torch_hub_checkpoints_dir() / "some_model.pth"
    hub_path.parent.mkdir(parents=True)
    hub_path.write_bytes(b"x")
    assert find_pretrained("some", [own, hf, hub]) == hub_path
    hf_path = _fake_hf_file("timm/some_model.tag", "model.safetensors", b"y")
    assert find_pretrained("some", [own, hf, hub]) == hf_path
    own_path = featx_weights_dir() / "some.safetensors"
    own_path.parent.mkdir(parents=True)
    own_path.write_bytes(b"z")
    assert find_pretrained("some", [own, hf, hub]) == own_path


def test_absent_weights_fail_fast_and_say_where(monkeypatch):
    tried = []  # fast means: no network attempt

    def no_network(sock, address):
        tried.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    candidates = [WeightCandidate("featx", "dinov2_vitl14.safetensors"),
                  WeightCandidate("hf", "model.safetensors", "timm/vit_large_patch14_dinov2.lvd142m"),
                  WeightCandidate("torch_hub", "dinov2_vitl14_pretrain.pth")]
    with pytest.raises(WeightsError) as err:
        find_pretrained("dinov2_vitl14", candidates)
    assert tried == []
    msg = str(err.value)
    assert "timm/vit_large_patch14_dinov2.lvd142m" in msg
    assert str(torch_hub_checkpoints_dir() / "dinov2_vitl14_pretrain.pth") in msg
    assert str(featx_weights_dir()) in msg
    assert "--weights FILE" in msg and "--random-init" in msg


def test_safetensors_detected_without_suffix(tmp_path):
    path = tmp_path / "weights.bin"
    save_file(_sd(), str(path))
    assert set(read_state_dict(path)) == set(_sd())
