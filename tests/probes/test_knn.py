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


def test_weighted_vote_is_dinov2_softmax_by_hand():
    sims = np.array([[0.9, 0.8, 0.1]], dtype=np.float32)
    idx = np.array([[0, 1, 2]])
    labels = np.array([[1, 0], [0, 1], [0, 1]], dtype=np.float32)
    w = np.exp(sims[0] / 0.07)
    w /= w.sum()
    expected = np.array([[w[0], w[1] + w[2]]])
    np.testing.assert_allclose(knn.weighted_vote(knn.Neighbours.of(sims, idx), labels, 3), expected, rtol=1e-6)
    # only the top k count
    np.testing.assert_allclose(knn.weighted_vote(knn.Neighbours.of(sims, idx), labels, 1), [[1.0, 0.0]])


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
