"""What the GPU check runs in child interpreters (the ones with torch, the harness and the
carried wheels): small programs that print their answer as JSON on a line starting with @@."""

from __future__ import annotations

import textwrap

from gpu_check_judge import REPRO_BATCHES

IMPORTS = ("torchao", "torch_pruning", "harness", "harness_plugins")
REPRO_MODEL = "digits-mlp"

# random images for the torchvision/timm sources (no download on the GPU machine)
VISION_DATA = ("import numpy as np, sys\n"
        "rng = np.random.default_rng(0)\n"
        "x = lambda n: rng.standard_normal((n, 3, 64, 64)).astype('float32')\n"
        "y = lambda n: (np.arange(n) % 10).astype('int64')\n"
        "np.savez(sys.argv[1], x_test=x(64), y_test=y(64), x_train=x(64), y_train=y(64))\n")

# ``harness validate`` of every suite given, in one interpreter
VALIDATE = ("import contextlib, io, json, sys\n"
        "from harness.cli import main\n"
        "out = {}\n"
        "for path in sys.argv[1:]:\n"
        "    buf = io.StringIO()\n"
        "    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):\n"
        "        try:\n"
        "            rc = main(['validate', path])\n"
        "        except SystemExit as exc:\n"
        "            rc = exc.code\n"
        "    text = buf.getvalue()\n"
        "    out[path] = [rc, text[:400] + ('\\n...\\n' + text[-1500:] if len(text) > 1900 else text[400:])]\n"
        "print('@@' + json.dumps(out))\n")

# versions, the GPU, torchao's extensions and onnxruntime's providers
ENV = ("import importlib, json, sys\n"
        "info = {'python': sys.version.split()[0]}\n"
        "for name in IMPORTS:\n"
        "    try:\n"
        "        mod = importlib.import_module(name)\n"
        "        info[name] = getattr(mod, '__version__', 'imported')\n"
        "    except Exception as exc:\n"
        "        info[name] = f'FAILED: {type(exc).__name__}: {exc}'\n"
        "try:\n"
        "    import torch\n"
        "    info['torch'] = torch.__version__\n"
        "    info['cuda_available'] = torch.cuda.is_available()\n"
        "    if torch.cuda.is_available():\n"
        "        p = torch.cuda.get_device_properties(0)\n"
        "        info['gpu'] = f'{p.name}, {p.total_memory / 2**30:.0f} GiB, cc {p.major}.{p.minor}'\n"
        "except Exception as exc:\n"
        "    info['torch'] = f'FAILED: {exc}'\n"
        "try:\n"
        "    from harness.measure.torchao_status import torchao_status\n"
        "    info['torchao_status'] = torchao_status()\n"
        "except Exception as exc:\n"
        "    info['torchao_status'] = f'FAILED: {type(exc).__name__}: {exc}'\n"
        "try:\n"
        "    import onnxruntime as ort\n"
        "    info['onnxruntime'] = ort.__version__\n"
        "    info['onnxruntime_providers'] = ort.get_available_providers()\n"
        "except Exception as exc:\n"
        "    info['onnxruntime'] = f'not importable: {type(exc).__name__}: {exc}'\n"
        "print('@@' + json.dumps(info, default=str))\n").replace("IMPORTS", repr(IMPORTS))

# what the GPU run's children import from the harness (checked by the dry run)
DRIVER_IMPORTS = ("from harness_plugins.sources.builtin.digits import load_trained, prepare\n"
         "from harness_plugins.tasks.classification import ClassificationConfig, ClassificationData\n"
         "from harness.measure.torchao_status import torchao_status\n"
         "import harness.cli\n")


def timer_code(device: str) -> str:
    """A child's code: torch.utils.benchmark.Timer's median (ms) per batch size of the
    repro model on the harness's own inputs, on the line starting with @@."""
    return textwrap.dedent(f"""\
        import json, torch
        from torch.utils.benchmark import Timer
        from harness_plugins.sources.builtin.digits import load_trained
        from harness_plugins.tasks.classification import ClassificationConfig, ClassificationData
        device = {device!r}
        model = load_trained({REPRO_MODEL!r}).to(device).eval()
        task = ClassificationData(ClassificationConfig("digits"), device)
        out = {{}}
        for b in {REPRO_BATCHES!r}:
            x = task.example_input(b).to(device)
            with torch.inference_mode():
                for _ in range(50):
                    model(x)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                timer = Timer("model(x)", globals={{"model": model, "x": x}}, num_threads=torch.get_num_threads())
                out[str(b)] = timer.blocked_autorange(min_run_time=1.5).median * 1e3
        print("@@" + json.dumps(out))
        """)


def train_code(ref: str) -> str:
    """A child's code: train a builtin model into the cache unless it is there."""
    return f"from harness_plugins.sources.builtin.digits import prepare; prepare({ref!r})"
