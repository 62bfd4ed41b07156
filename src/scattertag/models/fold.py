"""Batch norm folded into the convolution before it, for inference.

In eval mode a batch norm is an affine map per channel, y = g (x - mu) / sqrt(var + eps) + b,
so after a bias-free convolution x = W * u it is the convolution with weights
W' = W g / sqrt(var + eps) (per output channel) and bias b' = b - g mu / sqrt(var + eps).
One layer instead of two: the network's result is the same to float rounding, and a
prediction no longer passes every feature map through memory twice
(benchmarks/bench_predict.py measures the gain).

Only a batch norm that directly follows a convolution (or a linear layer) in an
``nn.Sequential`` is folded; the input batch norm of a trunk stays, since it acts before
the first convolution's zero padding, where an affine map does not commute with padding.
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn


def folded(layer: nn.Conv2d | nn.Linear, norm: nn.BatchNorm2d | nn.BatchNorm1d) -> nn.Module:
    """The layer (convolution or linear) followed by the eval-mode batch norm, as one layer."""
    assert norm.running_mean is not None and norm.running_var is not None
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale
    if norm.bias is not None:
        shift = shift + norm.bias
    if layer.bias is not None:
        shift = shift + layer.bias * scale
    out = copy.deepcopy(layer)
    with torch.no_grad():
        out.weight.copy_(layer.weight * scale.reshape(-1, *[1] * (layer.weight.dim() - 1)))
        out.bias = nn.Parameter(shift.detach().clone())
    return out


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """A copy of ``model`` for inference (eval mode) with every (Conv2d, BatchNorm2d) and
    (Linear, BatchNorm1d) pair of an ``nn.Sequential`` merged into one layer; ``model``
    itself is left as it is."""
    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in itertools.pairwise(names):
            layer, norm = module._modules[first], module._modules[second]
            if _foldable(layer, norm):
                module._modules[first] = folded(layer, norm)  # type: ignore[arg-type]
                module._modules[second] = nn.Identity()
    return model


def _foldable(layer: nn.Module | None, norm: nn.Module | None) -> bool:
    """Whether ``norm`` is a batch norm with running statistics over ``layer``'s outputs."""
    if isinstance(layer, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
        return norm.track_running_stats and layer.out_channels == norm.num_features
    if isinstance(layer, nn.Linear) and isinstance(norm, nn.BatchNorm1d):
        return norm.track_running_stats and layer.out_features == norm.num_features
    return False
