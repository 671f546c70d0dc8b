"""2:4 semi-structured sparsity: in every group of 4 consecutive weights along a Linear
layer's input dimension, the 2 smallest are zeroed.

On a CUDA GPU of compute capability 8.0 or newer the pruned fp16/bf16 weights are then
stored as core PyTorch semi-structured sparse tensors
(``torch.sparse.to_sparse_semi_structured``), whose matmuls run on the sparse tensor
cores; elsewhere (CPU, older GPUs, float32 weights) the zeros stay in dense tensors and
the info says the kernels are simulated, and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from harness.api import Method
from harness.toolkit import OMIT_AT_DEFAULT, count_params, target_layers
from harness_plugins.methods.pruning.common import sparsity_info


@dataclass(frozen=True)
class Sparse24Params:
    include_head: bool = False
    # the weights' dtype: "auto" = float16 where the sparse kernels can run (they take
    # fp16/bf16/int8 only), the model's own dtype elsewhere; "model" never casts
    dtype: Literal["auto", "model", "float16", "bfloat16"] = field(default="auto", metadata=OMIT_AT_DEFAULT)


def mask_2_4(weight: Any) -> Any:
    """True where a weight is kept: the 2 largest |w| of every 4 along the input dim."""
    import torch

    rows, cols = weight.shape
    groups = weight.detach().abs().reshape(rows, cols // 4, 4)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(2, groups.topk(2, dim=2).indices, True)
    return keep.reshape(rows, cols)


def sparse_kernels_missing(device: str) -> str | None:
    """Why the semi-structured kernels cannot run on ``device``, or None when they can
    (a CUDA GPU of compute capability >= 8.0: sparse tensor cores)."""
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        return f"semi-structured sparse kernels need a CUDA GPU of compute capability >= 8.0 (device is {device})"
    major, minor = torch.cuda.get_device_capability(torch.device(device))
    if (major, minor) < (8, 0):
        return f"semi-structured sparse kernels need compute capability >= 8.0; this GPU has {major}.{minor}"
    return None


def semi_structured_backend() -> Any:
    """The tensor class ``to_sparse_semi_structured`` will build: cuSPARSELt, or CUTLASS
    where this torch build has no cuSPARSELt (torch's documented ``_FORCE_CUTLASS``
    switch, set here so the conversion does not fail)."""
    import torch
    from torch.sparse import SparseSemiStructuredTensor

    if not torch.backends.cusparselt.is_available():
        SparseSemiStructuredTensor._FORCE_CUTLASS = True
    if SparseSemiStructuredTensor._FORCE_CUTLASS:
        return torch.sparse.SparseSemiStructuredTensorCUTLASS
    return torch.sparse.SparseSemiStructuredTensorCUSPARSELT


def unfit_reason(weight: Any, backend: Any) -> str | None:
    """Why ``backend`` cannot hold ``weight`` (its dtype, or rows/cols not positive
    multiples of the backend's minimum sparse block for that dtype), or None."""
    limits = backend._DTYPE_SHAPE_CONSTRAINTS.get(weight.dtype)
    if limits is None:
        return f"{weight.dtype} weights (the sparse kernels take {', '.join(map(str, backend._DTYPE_SHAPE_CONSTRAINTS))})"
    rows, cols = weight.shape
    min_rows, min_cols = limits.sparse_min_rows, limits.sparse_min_cols
    if rows % min_rows or cols % min_cols or rows < min_rows or cols < min_cols:
        return f"shape {rows}x{cols} is not a multiple of {min_rows}x{min_cols} ({backend.__name__}, {weight.dtype})"
    return None


def to_semi_structured(layers: list[tuple[str, Any]]) -> tuple[list[str], dict[str, str]]:
    """Replace each fitting layer's weight by a semi-structured sparse tensor; return the
    converted layers' names and, for the others, why they stay dense."""
    import torch

    backend = semi_structured_backend()
    converted, dense = [], {}
    for name, module in layers:
        reason = unfit_reason(module.weight, backend)
        if reason is None:
            weight = torch.sparse.to_sparse_semi_structured(module.weight.detach().contiguous())
            module.weight = torch.nn.Parameter(weight, requires_grad=False)
            converted.append(name)
        else:
            dense[name] = reason
    return converted, dense


def working_dtype(choice: str, kernels_missing: str | None) -> str | None:
    """The half dtype to run the model in, or None for the model's own."""
    if choice == "auto":
        return None if kernels_missing else "float16"
    return None if choice == "model" else choice


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
        info = sparsity_info(layers, before, model, f"torch {torch.__version__} (nn.utils.prune, sparse)", pattern="2:4")
        missing = sparse_kernels_missing(ctx.device)
        dtype = working_dtype(params.dtype, missing)
        if dtype is not None:
            from harness_plugins.methods.quantization.half_precision import half_model

            model, how = half_model(model, getattr(torch, dtype), ctx)
            info.update(how, dtype=dtype)
        if missing is not None:
            info["kernels"] = f"simulated (2:4 zeros in dense tensors: {missing})"
            return model, info
        converted, dense = to_semi_structured(layers)
        info["layers_sparse_kernels"], info["layers_dense_kernels"] = converted, dense
        if converted:
            info["kernels"] = f"real (torch.sparse semi-structured tensors, {semi_structured_backend().__name__})"
        else:
            info["kernels"] = "simulated (2:4 zeros in dense tensors: no layer fits the semi-structured kernels)"
        return model, info
