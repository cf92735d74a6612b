"""The eigenface baseline (tinygan.pca): Gram-matrix trick vs SVD, and samples with the fitted variances."""
import numpy as np

from tinygan import pca
from helpers import oval_faces


def test_gram_trick_and_svd_give_the_same_eigenfaces():
    X = pca.faces_to_matrix(oval_faces(20, size=16, seed=3))              # float32 (20, 768)
    assert X.dtype == np.float32 and X.min() >= -1 and X.max() <= 1
    mean_g, comps_g, eig_g = pca.fit_pca(X, "gram")
    mean_s, comps_s, eig_s = pca.fit_pca(X, "svd")
    assert comps_g.dtype == eig_g.dtype == np.float32
    k = 5
    np.testing.assert_allclose(eig_g[:k], eig_s[:k], rtol=1e-3)
    np.testing.assert_allclose(np.abs(np.sum(comps_g[:k] * comps_s[:k], axis=1)), 1, atol=1e-3)   # same up to sign
    np.testing.assert_allclose(comps_g[:k] @ comps_g[:k].T, np.eye(k), atol=1e-4)                # orthonormal
    centred = (X - mean_g).astype(np.float64)
    variance_along = ((centred @ comps_g[:k].T.astype(np.float64)) ** 2).sum(axis=0) / (len(X) - 1)
    np.testing.assert_allclose(variance_along, eig_g[:k], rtol=1e-3)      # eigenvalue = variance along the eigenface
    np.testing.assert_allclose(pca.reconstruct(X, mean_g, comps_g), X, atol=1e-3)   # all components: exact


def test_pca_samples_have_the_fitted_variances():
    rng = np.random.default_rng(0)
    mean, components, eigenvalues = pca.fit_pca(pca.faces_to_matrix(oval_faces(20, size=16, seed=4)))
    samples = pca.sample_pca(mean, components[:3], eigenvalues[:3], 4000, rng)
    coefficients = (samples - mean) @ components[:3].T
    np.testing.assert_allclose(coefficients.var(axis=0), eigenvalues[:3], rtol=0.1)
    assert samples.dtype == np.float32
