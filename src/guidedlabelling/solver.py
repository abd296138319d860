"""Caffe's SGD solver: per-parameter multipliers, step policy, lr inside the momentum."""
import torch


def step_lr(base_lr, iteration, stepsize, gamma):
    """Caffe lr_policy 'step': base_lr * gamma ^ floor(iter / stepsize)."""
    return base_lr * gamma ** (iteration // stepsize)


class CaffeSGD(torch.optim.Optimizer):
    """Caffe's SGD update, which differs from torch.optim.SGD when the lr changes.

    Per parameter: g += weight_decay * decay_mult * w;  v = momentum * v + lr * lr_mult * g;  w -= v.
    Param groups carry 'lr_mult' and 'decay_mult' (see param_groups).
    clip_gradients > 0: Caffe's solver option, scaling all gradients so their global L2 norm
    is at most that value, before weight decay and momentum.
    """

    def __init__(self, params, lr, momentum=0.9, weight_decay=0.0005, clip_gradients=-1):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                                      lr_mult=1.0, decay_mult=1.0))
        self.clip_gradients = clip_gradients

    def set_lr(self, lr):
        for group in self.param_groups:
            group["lr"] = lr

    @torch.no_grad()
    def step(self, closure=None):
        if self.clip_gradients > 0:
            grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
            scale = torch.clamp(self.clip_gradients / (norm + 1e-12), max=1.0)
            for g in grads:
                g.mul_(scale)
        for group in self.param_groups:
            local_lr = group["lr"] * group["lr_mult"]
            decay = group["weight_decay"] * group["decay_mult"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.add(p, alpha=decay) if decay else p.grad
                state = self.state[p]
                if "history" not in state:
                    state["history"] = torch.zeros_like(p)
                v = state["history"]
                v.mul_(group["momentum"]).add_(grad, alpha=local_lr)
                p.sub_(v)


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
