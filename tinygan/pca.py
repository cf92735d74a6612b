"""Eigenfaces (Turk & Pentland 1991): PCA on faces, and new faces from a Gaussian in the top directions.

A baseline for the GAN: the simplest generative model of faces, which FID (lesson 15) and
examples/pca_faces.py compare with the DCGAN.

The model. Flatten each 64x64 RGB face into a vector x of D = 12,288 numbers
in [-1, 1]. Stack N faces as the rows of X (N, D), take their mean mu and
centre them: Xc = X - mu. The covariance C = Xc^T Xc / (N - 1) is D x D. Its
eigenvectors v_i are the *eigenfaces*, and its eigenvalues lambda_i are the
variances of the faces along them. A new face is

    x = mu + sum_{i <= k} c_i v_i,    c_i ~ N(0, lambda_i) independently,

a sample from the Gaussian that best fits the faces in the top-k subspace.

How the eigenfaces are computed. C itself is 12,288^2 numbers (600 MB in
float32), and its eigendecomposition costs about D^3 = 2e12 flops. But N << D,
so C has rank N - 1 at most, and two cheaper routes give the same top v_i:

* the Gram-matrix trick (the default): K = Xc Xc^T is only N x N. If
  K u = s^2 u, then C (Xc^T u) = (s^2 / (N - 1)) (Xc^T u). So eigh(K) gives
  lambda_i = s_i^2 / (N - 1) and v_i = Xc^T u_i / s_i. It costs one matrix
  product (N^2 D flops, fast BLAS) and an N x N eigh (N^3), and needs N^2
  memory beyond X.
* the thin SVD of Xc = U S V^T (--method svd): C = V S^2 V^T / (N - 1), so the
  rows of V^T are the eigenfaces. It is the same O(N^2 D), but LAPACK's SVD
  is several times slower than one matrix product.

We use the Gram trick because it is fast and the top components are all we
keep. Its price is precision in the tail: forming K squares the singular
values, so in float32 (eps = 6e-8) an eigenvalue below about eps * lambda_1 is
rounding noise, and v_i = Xc^T u_i / s_i would amplify that noise. The SVD
works on Xc itself and keeps those small components accurate. fit_pca
therefore keeps only components with lambda_i > 1e-6 lambda_1, and the top-k
faces come out the same either way (examples/pca_faces.py --method compares them).
"""
import numpy as np

from . import viz

RELATIVE_TOLERANCE = 1e-6   # eigenvalues below this fraction of the largest are float32 rounding noise


def faces_to_matrix(faces):
    """uint8 (N, S, S, 3) -> float32 (N, D) in [-1, 1], D = S*S*3, one face per row."""
    X = faces.reshape(len(faces), -1).astype(np.float32)
    X /= np.float32(127.5)
    X -= np.float32(1.0)
    return X


def matrix_to_faces(X, size):
    """float (N, D) -> uint8 (N, S, S, 3), clipped to [-1, 1]."""
    return viz.to_uint8_images(X.reshape(len(X), size, size, 3).transpose(0, 3, 1, 2))


def fit_pca(X, method="gram"):
    """mean (D,), eigenfaces (K, D) with orthonormal rows, eigenvalues (K,) of the covariance, largest first."""
    n = len(X)
    mean = X.mean(axis=0)
    Xc = X - mean                                                  # (N, D)
    if method == "svd":
        _, s, Vt = np.linalg.svd(Xc, full_matrices=False)          # Xc = U diag(s) Vt
        s2 = s * s
    else:
        s2, U = np.linalg.eigh(Xc @ Xc.T)                          # Gram matrix (N, N); ascending eigenvalues
        s2, U = s2[::-1], U[:, ::-1]
    keep = s2 > RELATIVE_TOLERANCE * s2[0]                         # the rest is rounding noise (or the mean's 0)
    s2 = s2[keep]
    if method == "svd":
        components = Vt[keep]
    else:
        components = (Xc.T @ U[:, keep] / np.sqrt(s2)).T           # v_i = Xc^T u_i / s_i, (K, D)
    return mean, components.astype(np.float32), (s2 / (n - 1)).astype(np.float32)


def sample_pca(mean, components, eigenvalues, n, rng):
    """n faces x = mean + sum_i c_i v_i with c_i ~ N(0, eigenvalue_i): float32 (n, D)."""
    coefficients = rng.standard_normal((n, len(eigenvalues))).astype(np.float32) * np.sqrt(eigenvalues)
    return mean + coefficients @ components


def reconstruct(X, mean, components):
    """Project onto the eigenfaces and back: mean + (x - mean) V^T V."""
    return mean + ((X - mean) @ components.T) @ components


def eigenfaces_to_images(mean, components, size):
    """The mean face, then each eigenface stretched to [-1, 1] (its sign is arbitrary)."""
    stretched = components / np.abs(components).max(axis=1, keepdims=True)
    return matrix_to_faces(np.concatenate([mean[None], stretched]), size)
