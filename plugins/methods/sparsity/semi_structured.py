"""2:4 semi-structured sparsity: in every group of 4 consecutive weights along a Linear
layer's input dimension, the 2 smallest are zeroed.

On a CUDA GPU of compute capability 8.0 or newer the pruned weights are then stored as
``torch.sparse`` semi-structured tensors (through torchao's ``sparsify_``), whose matmuls
run on the sparse tensor cores; elsewhere the zeros stay in dense tensors and the info
says the kernels are simulated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.api import Method
from harness.toolkit import count_params, library
from harness_plugins.methods.layers import layer_filter, target_layers
from harness_plugins.methods.pruning.common import sparsity_info


@dataclass(frozen=True)
class Sparse24Params:
    include_head: bool = False


def mask_2_4(weight: Any) -> Any:
    """True where a weight is kept: the 2 largest |w| of every 4 along the input dim."""
    import torch

    rows, cols = weight.shape
    groups = weight.detach().abs().reshape(rows, cols // 4, 4)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(2, groups.topk(2, dim=2).indices, True)
    return keep.reshape(rows, cols)


def sparse_kernels_available(device: str) -> bool:
    """True on a CUDA device with compute capability >= 8.0 (sparse tensor cores)."""
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        return False
    return torch.cuda.get_device_capability(torch.device(device)) >= (8, 0)


def fits_semi_structured(weight: Any) -> bool:
    """Whether torch's default (CUTLASS) semi-structured tensor accepts this weight."""
    from torch.sparse import SparseSemiStructuredTensorCUTLASS as Cutlass

    limits = Cutlass._DTYPE_SHAPE_CONSTRAINTS.get(weight.dtype)
    if limits is None:
        return False
    rows, cols = weight.shape
    return rows % limits.sparse_min_rows == 0 and cols % limits.sparse_min_cols == 0 \
        and rows >= limits.sparse_min_rows and cols >= limits.sparse_min_cols


class Sparse24(Method):
    name = "sparse.2-4"
    family = "sparsity"
    description = "2 of every 4 weights zeroed (Linear layers); sparse tensor-core kernels on Ampere+ GPUs"
    Params = Sparse24Params

    def check(self, model, ctx):
        return None if any(m.in_features % 4 == 0 for _, m in target_layers(model)) \
            else "no Linear layer has an input size divisible by 4"

    def apply(self, model, params, ctx):
        import torch
        from torch.nn.utils import prune

        before = count_params(model)
        layers = [(n, m) for n, m in target_layers(model, include_head=params.include_head) if m.in_features % 4 == 0]
        for _, module in layers:
            prune.custom_from_mask(module, "weight", mask_2_4(module.weight))
            prune.remove(module, "weight")
        info = sparsity_info(layers, before, model, f"torch.nn.utils.prune {torch.__version__}", pattern="2:4")
        if sparse_kernels_available(ctx.device):
            from torchao.sparsity import SemiSparseWeightConfig, sparsify_

            fast = [n for n, m in layers if fits_semi_structured(m.weight)]
            sparsify_(model, SemiSparseWeightConfig(), filter_fn=layer_filter(fast))
            info["layers_sparse_kernels"] = fast
            info["layers_dense_kernels"] = [n for n, _ in layers if n not in fast]
            info["kernels"] = "real (torch semi-structured sparse tensors)" if fast else info["kernels"]
            info["library"] = f"{info['library']}; {library('torchao')} sparsify_"
        else:
            info["kernels"] = ("simulated (2:4 zeros in dense tensors; semi-structured kernels need a CUDA GPU "
                               "of compute capability >= 8.0)")
        return model, info

