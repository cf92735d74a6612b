"""Feature statistics, FID and KID.

Fit a Gaussian to each set of features (``features_to_statistics``), then

    FID = |mu_r - mu_f|^2 + tr(S_r) + tr(S_f) - 2 tr((S_r S_f)^(1/2))

the Fréchet (2-Wasserstein) distance between the two Gaussians (``statistics_to_fid``).
Lower is better. KID is the unbiased squared MMD with a cubic kernel (``kid``).
"""
import numpy as np

from .inception import FEATURE_DIM

MIN_SAMPLES = FEATURE_DIM   # fewer images than this give a rank-deficient covariance
KID_SUBSET_SIZE = 1000


def features_to_statistics(features):
    """(N, D) features -> (mu (D,), sigma (D, D)) in float64; sigma is the unbiased covariance (ddof=1)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must be (N, D) with N >= 2, got shape {f.shape}")
    mu = f.mean(axis=0)
    centred = f - mu
    return mu, centred.T @ centred / (f.shape[0] - 1)


def trace_sqrt_product(sigma1, sigma2):
    """tr((S1 S2)^(1/2)) for symmetric PSD S1, S2, without scipy.

    Factor S1 = B B^T from its eigendecomposition S1 = V diag(l) V^T, keeping the
    r eigenvalues that are not round-off: B = V_r diag(sqrt(l_r)), shape (D, r).
    Then S1 S2 = B (B^T S2) has the same nonzero eigenvalues as (B^T S2) B, the
    symmetric PSD r x r matrix M = B^T S2 B. So with the eigenvalues m_i >= 0 of M,

        tr((S1 S2)^(1/2)) = sum_i sqrt(m_i)

    Two ``eigh`` calls on symmetric matrices, no general (complex) sqrtm. With
    fewer samples than dimensions S1 is singular (rank < N); dropping its null
    space is then exact, and makes M small. Round-off eigenvalues of M just below 0
    are clipped to 0.
    """
    eigenvalues, vectors = np.linalg.eigh(sigma1)
    keep = eigenvalues > eigenvalues.max(initial=0.0) * len(eigenvalues) * np.finfo(np.float64).eps
    b = vectors[:, keep] * np.sqrt(eigenvalues[keep])                   # (D, r): S1 = B B^T
    m = b.T @ sigma2 @ b
    return float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum())


def statistics_to_fid(mu1, sigma1, mu2, sigma2):
    """Fréchet distance of N(mu1, S1) and N(mu2, S2):

        d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))
    """
    mu1, mu2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    sigma1, sigma2 = np.asarray(sigma1, dtype=np.float64), np.asarray(sigma2, dtype=np.float64)
    d = mu1.shape[0] if mu1.ndim == 1 else -1
    for name, value, shape in (("mu2", mu2, (d,)), ("sigma1", sigma1, (d, d)), ("sigma2", sigma2, (d, d))):
        if d < 1 or value.shape != shape:
            raise ValueError(f"statistics_to_fid: {name} has shape {value.shape}, expected {shape} "
                             f"to match mu1 {mu1.shape}")
    for name, value in (("mu1", mu1), ("mu2", mu2), ("sigma1", sigma1), ("sigma2", sigma2)):
        if not np.all(np.isfinite(value)):
            raise ValueError(f"statistics_to_fid: {name} contains NaN or inf")
    diff = mu1 - mu2
    fid = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt_product(sigma1, sigma2)
    return float(max(fid, 0.0))     # round-off can dip below 0 for identical statistics


def kid(features1, features2, subsets=100, subset_size=KID_SUBSET_SIZE, seed=0):
    """Kernel Inception Distance (Binkowski et al. 2018): (mean, std) over random subsets.

    Polynomial kernel k(x, y) = (x.y / d + 1)^3. For subsets X, Y of m samples each,
    the unbiased estimate of the squared MMD is

        MMD^2 = sum_{i!=j} k(x_i, x_j) / (m(m-1)) + sum_{i!=j} k(y_i, y_j) / (m(m-1))
                - 2 sum_{i,j} k(x_i, y_j) / m^2

    ``subset_size`` is capped at the smaller set; subsets are drawn without replacement.
    A subset as large as its whole set is that set in some order, and the sums above do not
    depend on the order: such terms are computed once (and if both sets are whole, the
    estimate is the same for every subset: it is computed once, with std 0).
    """
    f1, f2 = np.asarray(features1, dtype=np.float64), np.asarray(features2, dtype=np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"kid: expected two (N, D) feature arrays with the same D, got {f1.shape} and {f2.shape}")
    m = min(int(subset_size), len(f1), len(f2))
    if m < 2:
        raise ValueError(f"kid: need at least 2 samples per set, got {len(f1)} and {len(f2)}")
    d = f1.shape[1]

    def kernel(a, b):
        return (a @ b.T / d + 1) ** 3

    def within(a):                                    # sum_{i!=j} k(a_i, a_j) / (m(m-1))
        k_aa = kernel(a, a)
        return (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))

    whole1, whole2 = m == len(f1), m == len(f2)
    if whole1 and whole2:
        return float(within(f1) + within(f2) - 2 * kernel(f1, f2).mean()), 0.0
    within1, within2 = (within(f1) if whole1 else None), (within(f2) if whole2 else None)
    rng = np.random.default_rng(seed)
    estimates = np.empty(int(subsets))
    for s in range(len(estimates)):
        x = f1[rng.choice(len(f1), m, replace=False)]
        y = f2[rng.choice(len(f2), m, replace=False)]
        estimates[s] = ((within1 if whole1 else within(x)) + (within2 if whole2 else within(y))
                        - 2 * kernel(x, y).mean())
    return float(estimates.mean()), float(estimates.std())
