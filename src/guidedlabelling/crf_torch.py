"""The fully connected CRF (Kraehenbuehl & Koltun 2011) in torch, on the permutohedral lattice (Adams et al. 2010).

It reproduces pydensecrf2 1.1 (`pydensecrf.densecrf`) step by step, as crf.py calls it: Potts kernels with
symmetric normalisation and mean-field inference. Every step follows its C++ (densecrf/src/permutohedral.cpp,
pairwise.cpp, densecrf.cpp); docs/crf.md maps one onto the other. Only torch tensor operations are used, so the
same code runs on CPU and CUDA. Written by hand because no maintained library offers this CRF in torch: the
C++ package needs a compiler to install and runs one image at a time on one core.

On a CPU shared with other jobs, spin-waiting OpenMP threads made 2 threads 5-18x slower than 1: every command
sets OMP_WAIT_POLICY=PASSIVE unless the user set it (cli.sleeping_openmp_threads).
"""
import functools

import numpy as np
import torch
import torch.nn.functional as F

_SSE_BLOCK = 4  # the C++ builds its lattice 4 points at a time, see _pad_to_sse_block


# ----------------------------------------------------------------------------- lattice build
def _scale_factors(d, device):
    """Diagonal of the elevation matrix times sqrt(2/3)(d+1), rounded to float32 as in the C++."""
    inv_std_dev = np.float64(np.float32(np.sqrt(2.0 / 3.0) * (d + 1)))
    i = np.arange(d, dtype=np.float64)
    scale = (1.0 / np.sqrt((i + 2) * (i + 1)) * inv_std_dev).astype(np.float32)
    return torch.from_numpy(scale).to(device)


def _pad_to_sse_block(features):
    """Append zero feature vectors up to a multiple of 4 points per group.

    The SSE build in pydensecrf2 pads the last block of 4 with zero features and inserts their
    simplex vertices into the hash table too; they receive no values but do relay the blur.
    """
    g, n, d = features.shape
    pad = -n % _SSE_BLOCK
    return torch.cat([features, features.new_zeros(g, pad, d)], 1)


def _elevate(features):
    """Embed [P, d] features in the plane sum(x) = 0 of R^(d+1): y = E f (Adams et al. p.5).

    Returns [d+1, P]: the build works coordinate-major so that per-coordinate ops are contiguous.
    """
    p, d = features.shape
    scaled = (features * _scale_factors(d, features.device)).t().contiguous()
    elevated = features.new_empty(d + 1, p)
    tail_sum = features.new_zeros(p)
    for j in range(d, 0, -1):  # same order of float operations as the C++
        elevated[j] = tail_sum - j * scaled[j - 1]
        tail_sum = tail_sum + scaled[j - 1]
    elevated[0] = tail_sum
    return elevated


def _rank_descending(x):
    """Position of each row of x [k, P] in decreasing order, per column; ties to the lower row.

    The same pairwise comparisons as the C++; for k <= 6 this is faster than a sort.
    """
    rank = torch.zeros(x.shape, dtype=torch.long, device=x.device)
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            j_larger = x[i] < x[j]
            rank[i] += j_larger
            rank[j] += ~j_larger
    return rank


def _enclosing_simplex(elevated):
    """Remainder-0 vertex, coordinate ranks and barycentric weights (all [d+1, P]) of the simplex
    holding each point."""
    d = elevated.shape[0] - 1
    down = np.float32(1.0 / (d + 1))
    rounded = torch.round(elevated * down)  # round half to even, as SSE cvtps2dq does
    rem0 = rounded.long() * (d + 1)
    rank = _rank_descending(elevated - rem0) + rounded.sum(0).long()
    wrap = (d + 1) * ((rank < 0).long() - (rank > d).long())  # back onto the plane sum = 0
    rank, rem0 = rank + wrap, rem0 + wrap

    v = (elevated - rem0) * down
    barycentric = elevated.new_zeros(d + 2, elevated.shape[1])
    barycentric.scatter_add_(0, d - rank, v)
    barycentric.scatter_add_(0, d - rank + 1, -v)
    barycentric[0] += 1 + barycentric[d + 1]
    return rem0, rank, barycentric[: d + 1]


def _packed_vertex_keys(rem0, rank, group):
    """One int64 key per vertex of each point's simplex: [P, d+1] (from [d+1, P] rem0 and rank).

    Vertex r of the simplex has lattice coordinates rem0_i + r - (d+1)[rank_i > d - r] (the C++
    "canonical" simplex); like the C++ hash key it keeps the first d of the d+1 coordinates.
    (group, coordinates) are packed in mixed radix with room for the blur's +-(d+1) steps, so
    adding a constant to a key moves to a lattice neighbour. Returns keys and coordinate strides.
    """
    d = rank.shape[0] - 1
    coords = rem0[:d]
    low = coords.min(1).values - (2 * d + 1)
    spans = (coords.max(1).values + (2 * d + 1) - low + 1).tolist()
    radices = spans + [int(group.max()) + 1]
    if np.prod(radices, dtype=object) >= 2**62:
        raise ValueError("lattice too large for int64 keys; reduce the image size or 1/sigma")
    strides = torch.tensor(np.cumprod([1] + radices[:-1], dtype=object).tolist(), device=rem0.device)
    base = ((coords - low[:, None]) * strides[:d, None]).sum(0) + group * strides[d]

    # sum of strides_i over the coordinates with rank_i > d - r, for each r, via a suffix sum by rank
    stride_at_rank = torch.zeros_like(rank).scatter_(0, rank[:d], strides[:d, None].expand(d, rank.shape[1]))
    suffix = stride_at_rank.flip(0).cumsum(0)
    above = torch.cat([torch.zeros_like(suffix[:1]), suffix[:d]], 0)
    remainder = torch.arange(d + 1, device=rank.device)
    keys = base + remainder[:, None] * strides[:d].sum() - (d + 1) * above
    return keys.t(), strides[:d]


def _index_vertices(keys):
    """Sorted table of the distinct keys [M], the vertex index of every key, the stable sort order
    of the keys and, in that order, their vertex indices (a sort replaces the C++ hash table)."""
    sorted_keys, order = torch.sort(keys.reshape(-1), stable=True)
    new_key = torch.ones_like(sorted_keys, dtype=torch.bool)
    new_key[1:] = sorted_keys[1:] != sorted_keys[:-1]
    sorted_vertex = new_key.cumsum(0) - 1
    vertex = torch.empty_like(sorted_vertex).scatter_(0, order, sorted_vertex)
    return sorted_keys[new_key], vertex.view(keys.shape), order, sorted_vertex


def _splat_bags(order, sorted_vertex, barycentric, real, n_vertices):
    """Splatting as a weighted embedding_bag (a gather-sum, no atomics): the (point, weight) pairs
    of each vertex in increasing point order (the C++ accumulation order), and where each vertex's
    pairs start; the last bag (the zero row) is empty. Padding points get weight 0.
    real: [P] bool, which padded points are real; returns point indices among the real ones."""
    per_point = barycentric.shape[1]
    real_index = torch.where(real, real.cumsum(0) - 1, 0)
    points = real_index.repeat_interleave(per_point)[order]
    weights = (barycentric * real[:, None]).reshape(-1)[order]
    starts = torch.searchsorted(sorted_vertex, torch.arange(n_vertices + 1, device=order.device))
    return points.int(), weights, starts.int()


def _blur_bags(table, strides):
    """Per axis, each vertex's bag (itself, its two neighbours) for a weighted embedding_bag.

    Axis j moves every coordinate by -1 and coordinate j by +d (or the opposite way), as in the
    C++ init. A missing neighbour, and every slot of the extra zero row M, point at row M.
    """
    d, m = strides.shape[0], table.shape[0]
    itself = torch.arange(m + 1, device=table.device)
    bags = []
    for axis in range(d + 1):
        step = -strides.sum() + ((d + 1) * strides[axis] if axis < d else 0)
        bag = [itself]
        for target in (table + step, table - step):
            pos = torch.searchsorted(table, target).clamp(max=m - 1)
            found = torch.where(table[pos] == target, pos, torch.full_like(pos, m))
            bag.append(torch.cat([found, found.new_full((1,), m)]))
        bags.append(torch.stack(bag, 1).int())
    return bags


class PermutohedralLattice:
    """Approximate Gaussian filter (unit std in feature space) for G groups of N points each.

    Groups never exchange values: the group index is part of every lattice key. Built once from
    the features; filter() is then a splat, d+1 blurs and a slice, each one weighted
    embedding_bag (gather-sums, no atomics), at every mean-field iteration. Indices are int32 to
    reduce memory traffic.
    """

    def __init__(self, features):
        """features: [G, N, d] float32."""
        g, n, d = features.shape
        padded = _pad_to_sse_block(features)
        p = padded.shape[1]
        rem0, rank, barycentric = _enclosing_simplex(_elevate(padded.reshape(g * p, d)))
        barycentric = barycentric.t()
        group = torch.arange(g, device=features.device).repeat_interleave(p)
        keys, strides = _packed_vertex_keys(rem0, rank, group)
        table, vertex, order, sorted_vertex = _index_vertices(keys)

        real = (torch.arange(p, device=features.device) < n).repeat(g)
        self.vertex = vertex[real].int()
        self.slice_weights = barycentric[real] * np.float32(1.0 / (1.0 + 2.0 ** -d))  # the C++ "alpha"
        self.splat_points, self.splat_weights, self.splat_starts = _splat_bags(
            order, sorted_vertex, barycentric, real, table.shape[0])
        self.blur_bags = _blur_bags(table, strides)
        self.blur_weights = features.new_tensor([1.0, 0.5, 0.5]).repeat(table.shape[0] + 1, 1)

    def rescale(self, before, after):
        """Fold per-point factors [G, N] into the weights: filter(v) becomes after * filter(before * v)."""
        self.splat_weights = self.splat_weights * before.reshape(-1)[self.splat_points]
        self.slice_weights = self.slice_weights * after.reshape(-1, 1)

    def filter(self, values):
        """values [G, N, C] -> [G, N, C]."""
        g, n, c = values.shape
        lattice = F.embedding_bag(self.splat_points, values.reshape(g * n, c), self.splat_starts,
                                  mode="sum", per_sample_weights=self.splat_weights)
        for bags in self.blur_bags:  # row M stays 0: it gathers only itself
            lattice = F.embedding_bag(bags, lattice, mode="sum", per_sample_weights=self.blur_weights)
        out = F.embedding_bag(self.vertex, lattice, mode="sum", per_sample_weights=self.slice_weights)
        return out.reshape(g, n, c)


# ----------------------------------------------------------------------------- CRF
def _potts_message(features, weight):
    """Lattice whose filter(q) is the Potts message weight * K q of a DenseKernel with
    NORMALIZE_SYMMETRIC: K q = n * lattice(n * q), n = (lattice(1) + 1e-20)^(-1/2) per point."""
    lattice = PermutohedralLattice(features)
    ones = features.new_ones(*features.shape[:2], 1)
    norm = (lattice.filter(ones).double() + 1e-20).rsqrt().float()[..., 0]
    lattice.rescale(norm, weight * norm)
    return lattice


@functools.lru_cache(maxsize=4)
def _position_message(b, h, w, sxy, weight, device):
    """A position-only kernel's message depends only on the image size: built once per size (about 15 MB for
    500x375 on CPU) and reused; the lattice is read-only."""
    return _potts_message(_position_features(h, w, sxy, device).expand(b, -1, -1), weight)


def _position_features(h, w, sxy, device):
    """[1, H*W, 2] features (x/sxy, y/sxy) in row-major pixel order."""
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float32, device=device),
                          torch.arange(w, dtype=torch.float32, device=device), indexing="ij")
    return (torch.stack([x, y], -1) / np.float32(sxy)).reshape(1, h * w, 2)


def _bilateral_features(images, sxy, srgb):
    """[B, H*W, 5] features (x/sxy, y/sxy, r/srgb, g/srgb, b/srgb)."""
    b, h, w, _ = images.shape
    position = _position_features(h, w, sxy, images.device).expand(b, -1, -1)
    colour = images.reshape(b, h * w, 3).float() / np.float32(srgb)
    return torch.cat([position, colour], 2)


def _softmax_over_labels(energy):
    """Softmax over the last dim of a pixel-major [..., N, L] tensor, returned contiguous.

    torch's CPU softmax over a short last dim is slow (14 ms vs 3 ms for [187500, 3] here), so on
    CPU with few labels it runs over the label-major layout instead.
    """
    if energy.shape[-1] >= 8 or energy.device.type != "cpu":
        return torch.softmax(energy, -1)
    return torch.softmax(energy.transpose(-1, -2).contiguous(), -2).transpose(-1, -2).contiguous()


def _check_batch(images, unary, iterations):
    if not (torch.is_tensor(images) and torch.is_tensor(unary)):
        raise ValueError("images and unary must be torch tensors")
    if images.dim() != 4 or images.shape[-1] != 3 or images.dtype != torch.uint8:
        raise ValueError(f"images must be a [B, H, W, 3] uint8 tensor, got {tuple(images.shape)} {images.dtype}")
    if unary.dim() != 4 or not unary.is_floating_point():
        raise ValueError(f"unary must be a [B, L, H, W] floating tensor, got {tuple(unary.shape)} {unary.dtype}")
    b, l, h, w = unary.shape
    if images.shape[:3] != (b, h, w):
        raise ValueError(f"images {tuple(images.shape)} do not match unary {tuple(unary.shape)}: "
                         "need images [B, H, W, 3] for unary [B, L, H, W]")
    if min(b, l, h, w) < 1:
        raise ValueError(f"empty input: unary shape {tuple(unary.shape)}")
    if not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"iterations must be a non-negative int, got {iterations!r}")


def _mean_field(images, unary, kernels, iterations):
    """images [B, H, W, 3] uint8 and unary [B, L, H, W] on one device -> marginals [B, L, H, W]."""
    b, l, h, w = unary.shape
    n = h * w
    u = unary.float().permute(0, 2, 3, 1).reshape(b, n, l).contiguous()  # pixel-major rows
    messages = [_position_message(b, h, w, sxy, weight, unary.device) if srgb is None else
                _potts_message(_bilateral_features(images, sxy, srgb), weight) for sxy, srgb, weight in kernels]
    neg_unary = -u
    q = _softmax_over_labels(neg_unary)
    for _ in range(iterations):  # C++: tmp1 = -unary; tmp1 -= pairwise_k (= -w_k K_k Q); Q = softmax(tmp1)
        energy = messages[0].filter(q)
        energy += neg_unary
        for message in messages[1:]:
            energy += message.filter(q)
        q = _softmax_over_labels(energy)
    return q.reshape(b, h, w, l).permute(0, 3, 1, 2).contiguous()


def mean_field(images, unary, kernels, iterations):
    """Mean-field marginals of the dense CRF for a batch of images.

    images: [B, H, W, 3] uint8 RGB tensor; unary: [B, L, H, W] float tensor of unary energies (e.g. -log p);
    kernels: Potts kernels (spatial std, colour std or None for a position-only kernel, weight), added in this
    order as pydensecrf2's addPairwise* calls. All images of a batch share H, W and the label count L. Runs on
    unary's device (images are moved there), returns float32 marginals [B, L, H, W] there.

    On CPU the images are processed one after the other: one image's tensors fit the cache, a batch's do not (a
    batch of 4 was ~1.8x slower per image). Elsewhere the batch runs at once. Position-only kernels are cached
    for the last 4 sizes seen (_position_message).
    """
    _check_batch(images, unary, iterations)
    images = images.to(unary.device)
    if unary.device.type == "cpu":
        return torch.cat([_mean_field(images[i:i + 1], unary[i:i + 1], kernels, iterations) for i in range(len(unary))])
    return _mean_field(images, unary, kernels, iterations)
