"""Fréchet Inception Distance (and KID) from scratch: the FID Inception-v3 in tinygan layers.

FID compares two sets of images through the 2048-d features that an
Inception-v3 network (TensorFlow's "inception-2015-12-05" graph) computes for
each image. Fit a Gaussian to each set of features, then

    FID = |mu_r - mu_f|^2 + tr(S_r) + tr(S_f) - 2 tr((S_r S_f)^(1/2))

the Fréchet (2-Wasserstein) distance between the two Gaussians. Lower is better.

The pipeline, one file per step::

    uint8 images (N, H, W, 3)      preprocess.py: [0, 1] -> bilinear resize to 299 -> [-1, 1]
      -> float32 (N, 3, 299, 299)  inception.py: convs (BatchNorm folded in), pools, concatenations
      -> features (N, 2048)        statistics.py: features_to_statistics, mean and covariance
      -> (mu, sigma)               statistics.py: statistics_to_fid, the formula above

weights.py reads, converts and downloads the weights; sources.py turns a folder,
archive or checkpoint into images, caches the real statistics and puts it all
together in ``fid_between``. ``python -m tinygan fid`` is in tinygan/cli/fid.py.

Numbers comparable with the literature need the *exact* network and
preprocessing of the reference tools, so this file follows pytorch-fid's
``FIDInceptionA/C/E_1/E_2`` blocks (average pools that do not count the
padding, a max pool in the last block, BatchNorm eps = 1e-3 and no gamma) and
its resize (``F.interpolate(..., mode="bilinear", align_corners=False)``).
The weights are read with :mod:`tinygan.torchfile` from pytorch-fid's file or
from the equivalent TorchScript file, and converted once to a ``.npz``.
``preprocess(..., "legacy-tf")`` gives the other convention in use (clean-fid's
legacy_tensorflow, the StyleGAN tools); see :func:`preprocess`.
"""
from .inception import (BN_EPS, FEATURE_DIM, INPUT_SIZE, AvgPoolConv2d, BasicConv2d, FIDInceptionV3,  # noqa: F401
                        MaxPoolConv2d, fold_batchnorm)
from .preprocess import PREPROCESSING, images_to_features, preprocess, resize_bilinear, resize_matrix  # noqa: F401
from .sources import fid_between, generated_images, load_images, real_statistics  # noqa: F401
from .statistics import (KID_SUBSET_SIZE, MIN_SAMPLES, features_to_statistics, kid,  # noqa: F401
                         statistics_to_fid, trace_sqrt_product)
from .weights import (PYTORCH_FID_SHA256_PREFIX, PYTORCH_FID_URL, TORCHSCRIPT_NAME,  # noqa: F401
                      convert_fid_weights, download_fid_weights, fid_inception_v3, fid_weights_path,
                      read_fid_weights)
