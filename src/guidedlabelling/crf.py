"""The fully connected CRF (Kraehenbuehl & Koltun) with the release's parameter sets (docs/method.md section 5).

Two backends compute the same mean-field inference: `torch` (crf_torch.py: CPU or CUDA, batches; the default)
and `pydensecrf` (the C++ package pydensecrf2 the release used, optional: it needs a compiler to install).
"""
import numpy as np
import torch

from .crf_torch import mean_field
from .io import InputError

# Gaussian kernel: std 3 px, weight 3; bilateral kernel parameters per set.
PARAMS = {"deeplab": dict(bi_w=4, bi_xy=121, bi_rgb=5), "seed": dict(bi_w=10, bi_xy=80, bi_rgb=13)}
GAUSS_XY, GAUSS_W, ITERATIONS = 3, 3, 10
BACKENDS = ("torch", "pydensecrf")
TEST_CRFS = ("none", "deeplab")  # test-time CRF of a segmenter's labels: none, or with DeepLab's parameters


def kernels(params):
    """The Potts kernels of a parameter set: (spatial std, colour std or None, weight), Gaussian first."""
    if params not in PARAMS:
        raise InputError(f"CRF parameters {params!r}: choose one of {', '.join(PARAMS)}")
    p = PARAMS[params]
    return [(GAUSS_XY, None, GAUSS_W), (p["bi_xy"], p["bi_rgb"], p["bi_w"])]


def dense_crf(image, unary_energy, params="deeplab", iterations=ITERATIONS, backend="torch", device="cpu"):
    """Mean-field marginals [L, H, W] float32 of image HxWx3 uint8 RGB and unary_energy [L, H, W]."""
    if backend == "pydensecrf":
        return pydensecrf_marginals(image, unary_energy, params, iterations)
    if backend != "torch":
        raise InputError(f"--crf_backend {backend}: choose {' or '.join(BACKENDS)}")
    image = torch.from_numpy(np.array(image, np.uint8))[None].to(device)
    unary = torch.from_numpy(np.array(unary_energy, np.float32))[None].to(device)
    return mean_field(image, unary, kernels(params), iterations)[0].cpu().numpy()


def pydensecrf_marginals(image, unary_energy, params="deeplab", iterations=ITERATIONS):
    """The same inference by pydensecrf2 (the release's library)."""
    try:
        import pydensecrf.densecrf as dcrf  # optional: only this backend needs the C++ package
    except ImportError:
        raise InputError("--crf_backend pydensecrf: the package pydensecrf2 is not installed; pip install "
                         "pydensecrf2 (it compiles with a C++ compiler), or use --crf_backend torch") from None
    (gauss_xy, _, gauss_w), (bi_xy, bi_rgb, bi_w) = kernels(params)
    n, h, w = unary_energy.shape
    crf = dcrf.DenseCRF2D(w, h, n)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_energy.reshape(n, -1), np.float32))
    crf.addPairwiseGaussian(sxy=gauss_xy, compat=gauss_w)
    crf.addPairwiseBilateral(sxy=bi_xy, srgb=bi_rgb, rgbim=np.array(image, np.uint8, order="C"), compat=bi_w)
    return np.asarray(crf.inference(iterations), np.float32).reshape(n, h, w)


def crf_from_probs(image, probs, params="deeplab", backend="torch", device="cpu"):
    """Test-time post-processing: unary = -log p (p clipped at 1e-8: no infinite energies); returns the label
    map."""
    if not np.isfinite(probs).all():
        raise InputError("the segmenter's probabilities hold NaN or infinity (an fp16 overflow?); run with --amp "
                         "bf16 or none")
    energy = -np.log(np.clip(probs, 1e-8, 1.0))
    return dense_crf(image, energy, params, backend=backend, device=device).argmax(0).astype(np.uint8)
