import numpy as np
import pytest

from featx.probes import knn


def _data(n_db=300, n_q=50, d=16, seed=0):
    rng = np.random.default_rng(seed)
    return unit(rng.normal(size=(n_q, d))), unit(rng.normal(size=(n_db, d)))


def unit(x):
    return knn.l2_normalise(x).numpy()


def _brute(q, db, k):
    sims = q @ db.T
    idx = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, idx, 1), idx


@pytest.mark.parametrize("backend", knn.available_backends())
def test_search_is_exact(backend):
    q, db = _data()
    found = knn.search(q, db, 20, backend=backend)
    sims, idx = _brute(q, db, 20)
    np.testing.assert_allclose(found.sims.numpy(), sims, atol=1e-5)
    assert (np.sort(found.idx.numpy(), 1) == np.sort(idx, 1)).mean() > 0.999


@pytest.mark.parametrize("backend", knn.available_backends())
def test_a_point_is_never_its_own_neighbour(backend):
    _, db = _data()
    found = knn.search(db, db, 10, backend=backend, self_index=np.arange(len(db)))
    assert not (found.idx.numpy() == np.arange(len(db))[:, None]).any()
    sims, idx = _brute(db, db, 11)
    np.testing.assert_array_equal(np.sort(found.idx.numpy(), 1), np.sort(idx[:, 1:], 1))


def test_torch_backend_matches_faiss_reference():
    pytest.importorskip("faiss")
    pytest.importorskip("torch")
    q, db = _data(n_db=2000, n_q=200, d=64, seed=3)
    ref = knn.search(q, db, 50, backend="faiss")
    got = knn.search(q, db, 50, backend="torch")
    same = np.mean([len(set(a) & set(b)) / 50 for a, b in zip(ref.idx.numpy(), got.idx.numpy())])
    assert same > 0.999  # identical neighbour sets up to float ties
    labels = np.eye(4)[np.random.default_rng(0).integers(0, 4, 2000)]
    np.testing.assert_allclose(knn.weighted_vote(got, labels, 50), knn.weighted_vote(ref, labels, 50), atol=1e-4)


@pytest.mark.skipif(not knn.faiss_has_gpu(), reason="faiss GPU build not installed")
def test_faiss_gpu_matches_cpu():
    q, db = _data(n_db=2000, n_q=200, d=64, seed=4)
    ref = knn.search(q, db, 50, backend="faiss")
    got = knn.search(q, db, 50, backend="faiss", device="cuda")
    np.testing.assert_allclose(got.sims.cpu().numpy(), ref.sims.cpu().numpy(), atol=1e-4)
    assert np.mean([len(set(a) & set(b)) / 50 for a, b in zip(ref.idx.cpu().numpy(), got.idx.cpu().numpy())]) > 0.999


def test_torch_cuda_matches_cpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    q, db = _data(n_db=2000, n_q=200, d=64, seed=5)
    ref = knn.search(q, db, 50, backend="faiss" if "faiss" in knn.available_backends() else "torch")
    got = knn.search(q, db, 50, backend="torch", device="cuda")
    np.testing.assert_allclose(got.sims.cpu().numpy(), ref.sims.cpu().numpy(), atol=1e-4)
    assert np.mean([len(set(a) & set(b)) / 50 for a, b in zip(ref.idx.cpu().numpy(), got.idx.cpu().numpy())]) > 0.999


def _dinov2_by_hand(sims, idx, labels, k, kmax, T=0.07):
    """DINOv2 eval/knn.py: softmax over the top kmax once, then the first k weights summed per class."""
    w = np.exp(sims[:, :kmax] / T)
    w /= w.sum(1, keepdims=True)
    return np.einsum("qk,qkc->qc", w[:, :k], labels[idx[:, :k]])


def test_weighted_vote_is_dinov2_softmax_over_max_k_by_hand():
    sims = np.array([[0.9, 0.8, 0.75, 0.1], [0.5, 0.49, 0.3, 0.29]], dtype=np.float32)
    idx = np.array([[0, 1, 2, 3], [3, 2, 1, 0]])
    labels = np.array([[1, 0], [0, 1], [0, 1], [1, 0]], dtype=np.float32)
    found = knn.Neighbours.of(sims, idx)
    w = np.exp(sims[0] / 0.07) / np.exp(sims[0] / 0.07).sum()  # one softmax over all four
    np.testing.assert_allclose(knn.weighted_vote(found, labels, 2)[0], [w[0], w[1]], rtol=1e-6)
    for k in (1, 2, 3, 4):
        np.testing.assert_allclose(knn.weighted_vote(found, labels, k), _dinov2_by_hand(sims, idx, labels, k, 4), rtol=1e-6)
    for k in (1, 2, 3):  # max(ks) = 3 of the four listed
        np.testing.assert_allclose(knn.weighted_vote(found, labels, k, kmax=3), _dinov2_by_hand(sims, idx, labels, k, 3), rtol=1e-6)
    assert knn.weighted_vote(found, labels, 2).sum(1).max() < 1.0  # not renormalised per k


def test_renormalised_vote_is_the_softmax_over_each_ks_own_neighbours():
    sims = np.array([[0.9, 0.8, 0.78]], dtype=np.float32)
    idx = np.array([[0, 1, 2]])
    labels = np.array([[1, 0], [0, 1], [0, 1]], dtype=np.float32)
    found = knn.Neighbours.of(sims, idx)
    w = np.exp(sims[0, :2] / 0.07)
    np.testing.assert_allclose(knn.weighted_vote(found, labels, 2, vote="renormalised"), [w / w.sum()], rtol=1e-6)
    np.testing.assert_allclose(knn.weighted_vote(found, labels, 1, vote="renormalised"), [[1.0, 0.0]])
    dinov2 = knn.weighted_vote(found, labels, 2)
    assert np.argmax(dinov2) == 0 and not np.allclose(dinov2, [w / w.sum()])  # same arg-max, other scores
    with pytest.raises(Exception, match="unknown kNN vote"):
        knn.weighted_vote(found, labels, 2, vote="majority")
    with pytest.raises(Exception, match="kmax"):
        knn.weighted_vote(found, labels, 3, kmax=2)


@pytest.mark.parametrize("margin", [1.15, 0.5])
def test_protocol_neighbours_equal_separate_searches(margin):
    """One search over train+val gives exactly the train-only lists (with re-search where short)."""
    rng = np.random.default_rng(7)
    bank = unit(rng.normal(size=(400, 12)))
    is_train = rng.random(400) < 0.7
    test = unit(rng.normal(size=(60, 12)))
    got = knn.protocol_neighbours(bank, is_train, test, 20, with_selection=True, with_fit=True, margin=margin)
    train = bank[is_train]
    val = bank[~is_train]
    direct_val = knn.search(val, train, 20)
    np.testing.assert_array_equal(got.select_val.idx.numpy(), direct_val.idx.numpy())
    direct_fit = knn.search(train, train, 20, self_index=np.arange(len(train)))
    np.testing.assert_array_equal(got.select_fit.idx.numpy(), direct_fit.idx.numpy())
    np.testing.assert_array_equal(got.select_fit_rows.numpy(), np.arange(len(train)))
    final_fit = knn.search(bank, bank, 20, self_index=np.arange(400))
    np.testing.assert_array_equal(got.final_fit.idx.numpy(), final_fit.idx.numpy())
    np.testing.assert_array_equal(got.final_test.idx.numpy(), knn.search(test, bank, 20).idx.numpy())
    if margin < 1:
        assert got.n_requeried > 0  # the fall-back path ran


def test_pick_backend():
    assert knn.pick_backend("cpu") in ("faiss", "torch")
    with pytest.raises(Exception, match="unknown kNN backend"):
        knn.pick_backend("cpu", "annoy")
