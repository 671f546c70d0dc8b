"""A record of the machine and software a run used."""

from __future__ import annotations

import os
import platform
from typing import Any

from harness import DISTRIBUTION
from harness.machine import installed_version, usable_cores
from harness.measure.hardware import recorded
from harness.measure.torchao_status import torchao_status
from harness.warm import worker_mode


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str, plugin_versions: dict[str, str]) -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {
        "harness": installed_version(DISTRIBUTION),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": installed_version("numpy"),
        "torchao": installed_version("torchao"),
        # its compiled extensions: loaded, failed (why) or skipped by its torch check
        "torchao_status": torchao_status(),
        "plugins": plugin_versions,
        "os": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "device": device,
        "hostname": platform.node(),
        "worker_mode": worker_mode(),  # warm (forked from the fork server) or cold (fresh), and why
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        env["gpu"] = torch.cuda.get_device_name(index)
        env["cuda"] = torch.version.cuda
    env["gpu_state"] = recorded() or {"absent": "not recorded (the run stopped before it started)"}
    return env
