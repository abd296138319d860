"""Caffe's SGD and Adam solvers: per-parameter multipliers, step policy, Caffe's update rules."""
import torch


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
        if self.clip_gradients > 0:
            grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
            scale = torch.clamp(self.clip_gradients / (norm + 1e-12), max=1.0)
            for g in grads:
                g.mul_(scale)

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
