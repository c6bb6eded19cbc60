import numpy as np
import pytest

from featx.probes.mlknn import MLkNN


def test_hand_computed_small_case():
    """4 training points, 1 label, k = 1, s = 1 (worked out by hand below)."""
    labels = np.array([[1.0], [1.0], [0.0], [0.0]])
    # leave-one-out nearest neighbours: 0->1, 1->0, 2->1, 3->2
    fit_neighbours = np.array([[1], [0], [1], [2]])
    model = MLkNN(k=1, smoothing=1.0).fit(labels, fit_neighbours)
    # prior = (1 + 2) / (2 + 4) = 0.5
    assert model.prior[0] == pytest.approx(0.5)
    # counts C: point0 -> 1, point1 -> 1, point2 -> 1, point3 -> 0
    # positives (0, 1): c1 = [0, 2]; negatives (2, 3): c0 = [1, 1]
    np.testing.assert_array_equal(model.c1[0], [0, 2])
    np.testing.assert_array_equal(model.c0[0], [1, 1])
    # P(E_j|H1) = (1 + c1[j]) / (1*2 + 2) -> [1/4, 3/4];  P(E_j|H0) = (1 + c0[j]) / 4 -> [1/2, 1/2]
    np.testing.assert_allclose(model.like1[0], [0.25, 0.75])
    np.testing.assert_allclose(model.like0[0], [0.5, 0.5])
    # query with a positive neighbour: 0.5*0.75 / (0.5*0.75 + 0.5*0.5) = 0.6
    # query with a negative neighbour: 0.5*0.25 / (0.5*0.25 + 0.5*0.5) = 1/3
    proba = model.predict_proba(np.array([[0], [3]]))
    np.testing.assert_allclose(proba[:, 0], [0.6, 1 / 3], rtol=1e-6)


def test_unknown_labels_are_ignored():
    labels = np.array([[1.0], [np.nan], [0.0], [0.0]])
    model = MLkNN(k=1).fit(labels, np.array([[1], [0], [1], [2]]))
    assert model.prior[0] == pytest.approx((1 + 1) / (2 + 3))
    assert model.c1[0].sum() + model.c0[0].sum() == 3  # the NaN point is left out


def test_posteriors_are_probabilities_and_informative():
    rng = np.random.default_rng(0)
    n = 600
    y = (rng.random((n, 3)) < 0.3).astype(float)
    # neighbours share labels with probability 0.8
    same = [np.flatnonzero((y == y[i]).all(1)) for i in range(n)]
    neigh = np.array([rng.choice(same[i], 10) if rng.random() < 0.8 else rng.choice(n, 10) for i in range(n)])
    model = MLkNN(k=10).fit(y, neigh)
    p = model.predict_proba(neigh)
    assert ((p >= 0) & (p <= 1)).all()
    from sklearn.metrics import roc_auc_score

    assert min(roc_auc_score(y[:, c], p[:, c]) for c in range(3)) > 0.85


def test_bad_k():
    with pytest.raises(ValueError):
        MLkNN(k=0)
    with pytest.raises(ValueError, match="k=5"):
        MLkNN(k=5).fit(np.zeros((3, 1)), np.zeros((3, 2), dtype=int))
