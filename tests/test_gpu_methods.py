"""The methods that differ on a GPU: 2:4 sparsity, fp16/bf16 on a model that casts its
own input, float8 and FP4, and torchao's compiled-extension status (kernel truth).

Here (CPU) the simulated paths run for real, the GPU-only methods skip with their reason,
and the GPU wiring runs with stand-ins for what needs CUDA (device capability,
``to_sparse_semi_structured``). Tests marked ``cuda`` run the real kernels where a GPU is.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from harness.api import RunContext, Skip
from harness.measure.torchao_status import torchao_status
from harness.params import build
from harness_plugins.methods.quantization import common
from harness_plugins.methods.quantization.float4 import FP4, FP4Params, torchao_fp4_missing
from harness_plugins.methods.quantization.float8 import FP8, FP8Params
from harness_plugins.methods.quantization.uncalibrated import BF16, FP16
from harness_plugins.methods.sparsity import semi_structured
from harness_plugins.methods.sparsity.semi_structured import Sparse24, Sparse24Params, mask_2_4

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class MLP(nn.Module):
    def __init__(self, sizes: tuple[int, ...] = (64, 128, 10), cast: Any = None):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.cast = cast  # a forward that casts its input, as some user models do

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.cast) if self.cast is not None else x
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else torch.relu(layer(x))
        return x


class Task:
    def __init__(self, width: int, device: str = "cpu"):
        self.width, self.device = width, device

    def example_input(self, batch_size: int) -> torch.Tensor:
        return torch.randn(batch_size, self.width, generator=torch.Generator().manual_seed(0)).to(self.device)

    def calibration_batches(self, n_samples: int, batch_size: int = 64) -> list[torch.Tensor]:
        return [self.example_input(min(batch_size, n_samples))]


def context(device: str = "cpu", width: int = 64, data_device: str | None = None) -> RunContext:
    """A run on ``device`` whose task data lives on ``data_device`` (default: the same;
    "cpu" where the device is a stand-in)."""
    return RunContext(device=device, seed=0, work_dir=Path(tempfile.mkdtemp()), suite_dir=Path("."),
                      task=Task(width, data_device or device))


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A stand-in CUDA device of a chosen compute capability: ``gpu((8, 6))``."""
    def make(capability: tuple[int, int]) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Stand-in GPU")
    return make


def test_2_4_on_cpu_is_simulated_with_the_reason() -> None:
    torch.manual_seed(0)
    model = MLP((64, 128, 64, 10))
    out, info = Sparse24().apply(model, Sparse24Params(), context())
    for name in info["layers"]:
        groups = dict(out.named_modules())[name].weight.detach().reshape(-1, 4)
        assert bool(((groups == 0).sum(dim=1) >= 2).all()), name
    assert info["kernels"].startswith("simulated") and "compute capability >= 8.0" in info["kernels"]
    assert "dtype" not in info and out.layers[0].weight.dtype == torch.float32  # auto keeps float32 off the GPU


def test_2_4_converts_the_layers_that_fit_and_says_why_not_the_others(gpu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from torch.sparse import SparseSemiStructuredTensor

    gpu((8, 0))
    converted: list[tuple[int, ...]] = []
    monkeypatch.setattr(SparseSemiStructuredTensor, "_FORCE_CUTLASS", False)  # restored afterwards
    monkeypatch.setattr(torch.backends.cusparselt, "is_available", lambda: True)
    monkeypatch.setattr(torch.sparse, "to_sparse_semi_structured",
                        lambda w: converted.append(tuple(w.shape)) or w.clone())
    torch.manual_seed(0)
    model = MLP((64, 128, 64, 10))
    out, info = Sparse24().apply(model, Sparse24Params(), context("cuda", data_device="cpu"))  # "auto": float16 where kernels run
    assert info["dtype"] == "float16" and out.model.layers[0].weight.dtype == torch.float16
    assert info["layers_sparse_kernels"] == ["layers.0", "layers.1"] and converted == [(128, 64), (64, 128)]
    assert "10x64 is not a multiple of 16x16" in info["layers_dense_kernels"]["layers.2"]
    assert info["kernels"] == "real (torch.sparse semi-structured tensors, SparseSemiStructuredTensorCUSPARSELT)"
    assert out(torch.randn(3, 64)).dtype == torch.float32


def test_2_4_without_cusparselt_falls_back_to_cutlass_and_its_shape_rules(gpu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from torch.sparse import SparseSemiStructuredTensor

    gpu((9, 0))
    monkeypatch.setattr(SparseSemiStructuredTensor, "_FORCE_CUTLASS", False)
    monkeypatch.setattr(torch.backends.cusparselt, "is_available", lambda: False)
    monkeypatch.setattr(torch.sparse, "to_sparse_semi_structured", lambda w: w.clone())
    assert semi_structured.semi_structured_backend() is torch.sparse.SparseSemiStructuredTensorCUTLASS
    out, info = Sparse24().apply(MLP((64, 64, 64)), Sparse24Params(dtype="model"), context("cuda", data_device="cpu"))
    assert info["layers_sparse_kernels"] == ["layers.0", "layers.1"]  # CUTLASS takes float32 too
    weight = torch.randn(64, 64, dtype=torch.float32)
    assert "torch.float32 weights" in semi_structured.unfit_reason(weight, torch.sparse.SparseSemiStructuredTensorCUSPARSELT)
    assert "32x64" in semi_structured.unfit_reason(weight[:48].half(), torch.sparse.SparseSemiStructuredTensorCUTLASS)


@pytest.mark.parametrize("method", [FP16, BF16])
def test_half_precision_runs_a_model_that_casts_its_input_under_autocast(method: Any) -> None:
    from harness.api import NoParams

    torch.manual_seed(0)
    model = MLP(cast=torch.float32)
    x = torch.randn(5, 64)
    expected = model(x)
    out, info = method().apply(model, NoParams(), context())
    assert "torch.autocast('cpu'" in info["half_precision"] and "must have the same dtype" in info["half_precision"]
    got = out(x)
    assert got.dtype == torch.float32 and torch.allclose(got, expected, atol=0.05, rtol=0.05)


def test_half_precision_skips_a_model_autocast_cannot_rescue_with_both_errors() -> None:
    from harness.api import NoParams

    with pytest.raises(Skip, match="does not run in bfloat16: with its inputs cast, RuntimeError.*under torch.autocast"):
        BF16().apply(MLP(cast=torch.float64), NoParams(), context())


def test_half_precision_casts_a_plain_model_without_autocast() -> None:
    from harness.api import NoParams

    out, info = BF16().apply(MLP(), NoParams(), context())
    assert info["half_precision"] == "weights and inputs cast to bfloat16" and not out.use_autocast


def test_fp8_and_fp4_skip_off_the_gpu_and_on_older_gpus_with_the_reason(gpu: Any) -> None:
    model = MLP((64, 128, 128, 16))
    assert "CUDA GPU of compute capability >= 8.9 (this run's device is cpu)" in FP8().check(model, context())
    assert "compute capability >= 10.0" in FP4().check(model, context())
    gpu((8, 6))
    assert FP8().check(model, context("cuda")) == "float8 matmuls need a GPU of compute capability >= 8.9; Stand-in GPU has 8.6"
    gpu((9, 0))
    assert FP8().check(model, context("cuda")) is None
    assert "compute capability >= 10.0; Stand-in GPU has 9.0" in FP4().check(model, context("cuda"))
    assert "multiples of 16" in FP8().check(MLP((60, 10)), context("cuda"))


def test_fp8_and_fp4_params_are_checked() -> None:
    for cls, table, key in ((FP8Params, {"granularity": "per-block"}, "granularity"),
                            (FP4Params, {"format": "fp4"}, "format")):
        problems: list[str] = []
        assert build(cls, table, "m", problems) is None and key in problems[0]
    with pytest.raises(ValueError, match="granularity"):
        FP8Params(granularity="per-block")  # type: ignore[arg-type]


def test_layers_the_low_bit_kernels_cannot_take_are_listed_with_why() -> None:
    chosen, left = common.aligned_layers(MLP((64, 128, 64, 10)), 16, min_out=64)
    assert chosen == ["layers.0"]
    assert "64 outputs" in left["layers.1"] and "not a multiple of 16" in left["layers.2"]


def test_fp4_check_names_the_torchao_version_when_it_lacks_fp4(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchao.prototype.mx_formats", None)  # import fails
    reason = torchao_fp4_missing()
    assert reason and reason.startswith("torchao 0.") and "has no FP4 inference configs" in reason


def fake_torchao(tmp_path: Path, **attrs: Any) -> SimpleNamespace:
    (tmp_path / "_C_cutlass_90a.abi3.so").write_bytes(b"not a shared library")
    return SimpleNamespace(__file__=str(tmp_path / "__init__.py"), **attrs)


def test_torchao_status_reports_failed_extensions_and_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchao", fake_torchao(tmp_path, skip_loading_so_files=False))
    status = torchao_status()
    assert status["torch_compatible"] and status["extensions_loaded"] == []
    assert "_C_cutlass_90a.abi3.so" in status["extensions_failed"]  # with the loader's own error
    summary = common.torchao_extensions()
    assert summary.startswith("0 loaded; _C_cutlass_90a.abi3.so failed (")


def test_torchao_status_reports_torchaos_own_version_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reason = "Skipping import of cpp extensions due to incompatible torch version."
    monkeypatch.setitem(sys.modules, "torchao", fake_torchao(tmp_path, skip_loading_so_files=True, _skip_reason=reason))
    status = torchao_status()
    assert status["torch_compatible"] is False and status["reason"] == reason
    assert status["extensions_skipped"] == ["_C_cutlass_90a.abi3.so"]
    assert common.torchao_extensions() == f"none loaded: {reason}"


def test_env_records_torchao_without_importing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.measure.environment import environment

    monkeypatch.delitem(sys.modules, "torchao", raising=False)
    env = environment("cpu", {})
    assert env["torchao_status"] == {"version": env["torchao"],
                                     "extensions": "not checked: this process did not import torchao"}
    assert "torchao" not in sys.modules


# --- real kernels: where a GPU is --------------------------------------------------


@pytest.mark.cuda
@needs_cuda
def test_cuda_2_4_semi_structured_matches_the_masked_dense_model() -> None:
    if torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("needs a CUDA GPU of compute capability >= 8.0")
    torch.manual_seed(0)
    model = MLP((256, 512, 256, 128)).cuda()
    reference = MLP((256, 512, 256, 128)).cuda()
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():
        for layer in reference.layers:
            layer.weight *= mask_2_4(layer.weight)
    reference = reference.half()
    out, info = Sparse24().apply(model, Sparse24Params(dtype="float16"), context("cuda", 256))
    assert info["kernels"].startswith("real") and info["layers_sparse_kernels"] == ["layers.0", "layers.1", "layers.2"]
    assert type(out.model.layers[0].weight).__name__.startswith("SparseSemiStructuredTensor")
    x = torch.randn(64, 256, device="cuda")
    with torch.no_grad():
        torch.testing.assert_close(out(x), reference(x.half()).float(), atol=2e-2, rtol=2e-2)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("granularity", ["per-row", "per-tensor"])
def test_cuda_fp8_runs_close_to_the_float_model(granularity: str) -> None:
    if torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("float8 needs compute capability >= 8.9")
    torch.manual_seed(0)
    model = MLP((256, 512, 256, 128)).cuda()
    x = torch.randn(64, 256, device="cuda")
    with torch.no_grad():
        expected = model(x)
    ctx = context("cuda", 256)
    assert FP8().check(model, ctx) is None
    out, info = FP8().apply(model, FP8Params(granularity=granularity), ctx)
    assert info["kernels"].startswith("real") and info["layers_touched"] == 3 and info["torchao_extensions"]
    assert type(out.model.layers[0].weight).__name__ == "Float8Tensor"
    with torch.no_grad():
        got = out(x)
    assert (got - expected).norm() / expected.norm() < 0.1


@pytest.mark.cuda
@needs_cuda
def test_cuda_every_quantization_method_runs_or_skips_with_a_reason() -> None:
    from harness.plugins import load_plugins

    plugins = load_plugins()
    seen = {}
    for name in plugins.names("method"):
        cls = plugins.lookup("method", name)
        if cls.family != "quantization" or "training" in cls.needs:
            continue
        torch.manual_seed(0)
        model, ctx = MLP((256, 512, 256, 128)).cuda().eval(), context("cuda", 256)
        reason = cls().check(model, ctx)
        if reason is not None:
            seen[name] = f"skipped: {reason}"
            continue
        out, info = cls().apply(model, cls.Params(), ctx)
        with torch.no_grad():
            y = out(torch.randn(8, 256, device="cuda"))
        assert y.shape == (8, 128) and bool(torch.isfinite(y).all()), name
        seen[name] = info["kernels"]
    print(seen)
    assert "quant.int8-dynamic" in seen and "quant.fp8" in seen

