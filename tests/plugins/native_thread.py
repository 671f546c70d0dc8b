"""Imported, starts a native thread that Python does not know of (as an OpenMP pool, a
tokenizer's or a scheduler's would): a pthread sleeping in libc, outside the interpreter."""

import ctypes

_libc = ctypes.CDLL(None)
_thread = ctypes.c_ulong()
_start = ctypes.cast(_libc.sleep, ctypes.c_void_p)  # sleep(unsigned): its one argument, the seconds
if _libc.pthread_create(ctypes.byref(_thread), None, _start, ctypes.c_void_p(3600)) != 0:
    raise OSError("pthread_create failed")
