"""Fully connected CRF (Kraehenbuehl & Koltun) through pydensecrf2, with the release's parameter sets."""
import numpy as np
import pydensecrf.densecrf as dcrf

# Gaussian kernel: std 3 px, weight 3; bilateral kernel parameters per set (docs/method.md section 5).
PARAMS = {"deeplab": dict(bi_w=4, bi_xy=121, bi_rgb=5), "seed": dict(bi_w=10, bi_xy=80, bi_rgb=13)}
GAUSS_XY, GAUSS_W, ITERATIONS = 3, 3, 10


def dense_crf(image, unary_energy, params="deeplab", iterations=ITERATIONS):
    """Mean-field inference; image HxWx3 uint8 RGB, unary_energy [L, H, W] float -> marginals [L, H, W]."""
    p = PARAMS[params]
    n, h, w = unary_energy.shape
    crf = dcrf.DenseCRF2D(w, h, n)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_energy.reshape(n, -1), np.float32))
    crf.addPairwiseGaussian(sxy=GAUSS_XY, compat=GAUSS_W)
    crf.addPairwiseBilateral(sxy=p["bi_xy"], srgb=p["bi_rgb"], rgbim=np.array(image, np.uint8, order="C"),
                             compat=p["bi_w"])
    return np.asarray(crf.inference(iterations), np.float32).reshape(n, h, w)


def crf_from_probs(image, probs, params="deeplab"):
    """Test-time post-processing: unary = -log p; returns the label map."""
    energy = -np.log(np.clip(probs, 1e-8, 1.0))
    return dense_crf(image, energy, params).argmax(0).astype(np.uint8)
