"""What a child forked by the fork server does: become what ``python -m MODULE ARGS``
would be in a fresh interpreter, run ``MODULE.main(ARGS)`` (a run's worker:
``harness.worker`` with ``[SPEC, RESULT]``; also the driver's model preparation and idle
power measurement), and leave with ``os._exit`` (never back into the server's loop)."""

from __future__ import annotations

import atexit
import importlib
import json
import os
import signal
import sys
import traceback
from contextlib import suppress
from typing import Any

from harness.warm import MODE_VAR, WARM

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """SIGKILL this process when its parent ends (Linux)."""
    import ctypes

    with suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _default_signals() -> None:
    """The signal dispositions of a fresh interpreter: the server's own handlers go."""
    with suppress(ValueError, OSError):
        signal.set_wakeup_fd(-1)
    for sig in signal.valid_signals():
        with suppress(OSError, ValueError, TypeError):
            handler = signal.getsignal(sig)
            if callable(handler) and handler is not signal.default_int_handler:
                signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _stdio(log_fd: int) -> None:
    """stdin from /dev/null; stdout and stderr onto the run's log pipe."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)


def _fresh_state(threads: int, nvml_inits: int) -> None:
    """What a fresh interpreter would not share with its siblings: random seeds, thread
    counts (OMP_NUM_THREADS was read when the server loaded torch), NVML's handle."""
    import random

    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if threads:
        import torch

        torch.set_num_threads(threads)
    if nvml_inits:  # the server shut NVML down before forking: each child opens its own
        with suppress(Exception):
            for _ in range(nvml_inits):
                sys.modules["pynvml"].nvmlInit()


def _keep_torch_libraries() -> None:
    """Leave torch's custom-op libraries registered at exit: torch unregisters each one in
    an atexit finalizer (~0.2 ms each, 100+ with torchao: 20-50 ms a run), pointless in a
    process about to end, after its result is written. Every other exit handler runs."""
    import weakref

    for finalizer, info in list(getattr(weakref.finalize, "_registry", {}).items()):
        func = getattr(info, "func", None)
        if getattr(func, "__module__", "") == "torch.library" and getattr(func, "__name__", "") == "_del_library":
            finalizer.atexit = False


def run(request: dict[str, Any], log_fd: int, gate_fd: int, server_pid: int, close_fds: list[int],
        nvml_inits: int) -> None:
    """Become the worker of ``request`` and exit with its status; never returns."""
    code = 1
    try:
        os.setsid()  # its own session and process group, as Popen(start_new_session=True)
        die_with_parent()
        if os.getppid() != server_pid:  # the server ended before PDEATHSIG was set
            os._exit(1)
        os.write(gate_fd, b"x")  # the server replies with this pid only now: killpg(pid) works
        os.close(gate_fd)
        for fd in close_fds:
            with suppress(OSError):
                os.close(fd)
        _default_signals()
        _stdio(log_fd)
        os.chdir(request["cwd"])
        with open(request["env"]) as fh:
            env = json.load(fh)
        os.environ.clear()
        os.environ.update(env)
        os.environ[MODE_VAR] = WARM
        _fresh_state(int(request.get("threads") or 0), nvml_inits)
        module = importlib.import_module(request.get("module") or "harness.worker")
        from harness.measure.memory import mark_start

        mark_start()  # a run's peak RSS counts from here, as a cold worker's after the same imports
        args = [str(a) for a in request["args"]]
        sys.argv = [module.__file__ or request["module"], *args]
        code = module.main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        with suppress(Exception):
            traceback.print_exc()
    finally:
        with suppress(BaseException):
            _keep_torch_libraries()
        with suppress(BaseException):
            atexit._run_exitfuncs()  # as an interpreter's exit would
        for stream in (sys.stdout, sys.stderr):
            with suppress(BaseException):
                stream.flush()
        os._exit(code if isinstance(code, int) else 1)
