"""A training's solver: its settings (the paper's, docs/method.md section 1) and Caffe's SGD and Adam solvers
(per-parameter multipliers, step policy, Caffe's update rules)."""
from dataclasses import dataclass, fields

import torch

from .checks import MAX_LR, NON_NEGATIVE, POSITIVE, SIDE, above, all_of, at_most, below, between, filled, \
    one_of


def step_lr(base_lr, iteration, stepsize, gamma):
    """Caffe lr_policy 'step': base_lr * gamma ^ floor(iter / stepsize)."""
    return base_lr * gamma ** (iteration // stepsize)


class CaffeSolver(torch.optim.Optimizer):
    """What Caffe's solvers share: param groups carrying 'lr_mult' and 'decay_mult' (see param_groups), the
    lr set from outside (the step policy), and clip_gradients > 0, Caffe's option scaling all gradients so
    their global L2 norm is at most that value, before weight decay and the update."""

    def __init__(self, params, defaults, clip_gradients=-1):
        super().__init__(params, defaults | dict(lr_mult=1.0, decay_mult=1.0))
        self.clip_gradients = clip_gradients

    def set_lr(self, lr):
        for group in self.param_groups:
            group["lr"] = lr

    def clip(self):
        """Caffe's ClipGradients: every gradient scaled by clip_gradients / their global L2 norm where that is
        below 1 (torch adds 1e-6 to the norm, Caffe nothing)."""
        if self.clip_gradients > 0:
            torch.nn.utils.clip_grad_norm_([p for g in self.param_groups for p in g["params"]], self.clip_gradients)

    def decayed_grads(self):
        """(group, parameter, its gradient plus weight_decay * decay_mult * w, its state) of every parameter."""
        for group in self.param_groups:
            decay = group["weight_decay"] * group["decay_mult"]
            for p in group["params"]:
                if p.grad is not None:
                    yield group, p, p.grad.add(p, alpha=decay) if decay else p.grad, self.state[p]


class CaffeSGD(CaffeSolver):
    """Caffe's SGD update, which differs from torch.optim.SGD when the lr changes.

    Per parameter: g += weight_decay * decay_mult * w;  v = momentum * v + lr * lr_mult * g;  w -= v.
    """

    def __init__(self, params, lr, momentum=0.9, weight_decay=0.0005, clip_gradients=-1):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay), clip_gradients)

    @torch.no_grad()
    def step(self, closure=None):
        self.clip()
        for group, p, grad, state in self.decayed_grads():
            if "history" not in state:
                state["history"] = torch.zeros_like(p)
            state["history"].mul_(group["momentum"]).add_(grad, alpha=group["lr"] * group["lr_mult"])
            p.sub_(state["history"])


class CaffeAdam(CaffeSolver):
    """Caffe's Adam solver (type "Adam"; Kingma & Ba), for new heads on an ImageNet trunk whose features are
    too unevenly scaled for one SGD rate: each weight's step is scaled by its own gradient history.

    Per parameter, at iteration t = 1, 2, ...: g += weight_decay * decay_mult * w;  m = b1 m + (1 - b1) g;
    v = b2 v + (1 - b2) g^2;  w -= lr * lr_mult * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + delta),
    with b1 = momentum, b2 = momentum2.
    """

    def __init__(self, params, lr, momentum=0.9, weight_decay=0.0005, clip_gradients=-1, momentum2=0.999,
                 delta=1e-8):
        super().__init__(params, dict(lr=lr, momentum=momentum, momentum2=momentum2, delta=delta,
                                      weight_decay=weight_decay), clip_gradients)

    @torch.no_grad()
    def step(self, closure=None):
        self.clip()
        for group, p, grad, state in self.decayed_grads():
            if "m" not in state:
                state.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
            b1, b2 = group["momentum"], group["momentum2"]
            state["t"] += 1
            state["m"].mul_(b1).add_(grad, alpha=1 - b1)
            state["v"].mul_(b2).addcmul_(grad, grad, value=1 - b2)
            rate = group["lr"] * group["lr_mult"] * (1 - b2 ** state["t"]) ** 0.5 / (1 - b1 ** state["t"])
            p.addcdiv_(state["m"], state["v"].sqrt().add_(group["delta"]), value=-rate)


SOLVERS = {"sgd": CaffeSGD, "adam": CaffeAdam}


def param_groups(model, lr_mults):
    """Caffe per-parameter multipliers: {'lr_mult', 'decay_mult'} per trainable parameter.

    lr_mults maps a layer name to (weight_lr, weight_decay, bias_lr, bias_decay);
    every other layer gets Caffe's usual (1, 1, 2, 0).
    """
    groups = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        layer, kind = name.split(".")[-2], name.split(".")[-1]
        wl, wd, bl, bd = lr_mults.get(layer, (1, 1, 2, 0))
        key = (wl, wd) if kind == "weight" else (bl, bd)
        groups.setdefault(key, []).append(p)
    return [{"params": ps, "lr_mult": lm, "decay_mult": dm} for (lm, dm), ps in groups.items()]


def training_options(net, init, nets):
    """The settings of a training (the paper's solver: docs/method.md section 1) with its network's defaults."""
    return {
        "net": (net, f"network: {', '.join(nets)}"),
        "init": (init, "initial weights (.caffemodel, .pth, imagenet for a network's built-in weights, or none)"),
        "init_partial": (False, "allow an init file that leaves layers of the pretrained trunk unloaded or "
                                "misshapen (they keep their random start)"),
        "width": (1.0, "channel width multiplier (1 = the paper's network)"),
        "input_size": (321, "training crop side"),
        "base_lr": (0.001, "Caffe base_lr"),
        "momentum": (0.9, "Caffe momentum"),
        "weight_decay": (0.0005, "Caffe weight_decay"),
        "stepsize": (2000, "lr x gamma every stepsize iterations"),
        "gamma": (0.1, "lr step factor"),
        "max_iter": (8000, "training iterations"),
        "batch_size": (15, "images per iteration"),
        "clip_gradients": (-1.0, "Caffe clip_gradients: cap on the global gradient L2 norm (-1: off)"),
        "solver_type": ("sgd", "Caffe solver type: sgd (the paper's) or adam (momentum2 0.999, delta 1e-8)"),
        "freeze_trunk": (False, "train only the new layers (Caffe lr_mult 0 for the pretrained trunk)"),
        "seed": (0, "random seed"),
    }


MAX_ITER = 1_000_000  # the sample order of a training is drawn whole: max_iter x batch_size indices


RELEASE_NETS = {   # the release's names of networks, each with the one here that replaces it
    "DeepLab": ("DeepLab-LargeFOV", "the release's DeepLab is DeepLab-LargeFOV here"),
    "DeepLabv2_ResNet": ("DeepLab-LargeFOV", "the release's saliency network, DeepLab v2 on ResNet-101 (its maps came "
                                             "precomputed), is not ported"),
}


def network_of(nets):
    """one_of(*nets), naming what replaces the release's segmenter and saliency network where it is among them."""
    choose = one_of(*nets)

    def check(value):
        problem = choose(value)
        here, why = RELEASE_NETS.get(value, (None, ""))
        return f"{why}; {problem}" if problem and here in nets else problem
    return check


def solver_checks(nets):
    """The ranges of a training's settings (training_options)."""
    return {"net": network_of(nets), "init": filled("none (from scratch), imagenet or a weights file"),
            "width": above(0), "input_size": SIDE, "base_lr": all_of(above(0), at_most(MAX_LR)),
            "momentum": all_of(NON_NEGATIVE, below(1)), "weight_decay": NON_NEGATIVE, "stepsize": POSITIVE,
            "gamma": all_of(above(0), between(0, 1)), "max_iter": between(1, MAX_ITER), "batch_size": POSITIVE,
            "seed": between(0, 2**64 - 1),   # torch.manual_seed's range
            "solver_type": one_of(*SOLVERS)}


@dataclass
class Solver:
    """One training's solver (docs/method.md section 1) and the run's snapshot interval."""
    base_lr: float
    max_iter: int
    stepsize: int
    batch_size: int
    seed: int
    snapshot: int
    clip_gradients: float = -1
    momentum: float = 0.9
    weight_decay: float = 0.0005
    gamma: float = 0.1
    solver_type: str = "sgd"

    @classmethod
    def of(cls, section, snapshot):
        """The solver of a training section of the config."""
        return cls(snapshot=snapshot, **{f.name: section[f.name] for f in fields(cls) if f.name != "snapshot"})
