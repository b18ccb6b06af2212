"""Keep freed tensor memory in the process instead of handing it back to the OS (glibc's malloc).

By default glibc serves every large allocation with a fresh `mmap` and unmaps it on free, and trims the
heap whenever its free top grows, so a CPU training step page-faults all of its activations back in,
every step. With mmap off and trimming off, freed blocks are reused: steps run faster for somewhat more
peak resident memory (figures: `bench/host_memory.py`, README). It is the tuning that
PyTorch's CPU performance guide gets from preloading jemalloc or tcmalloc, without a system package.
Elsewhere than glibc it does nothing.
"""

import ctypes
import platform

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # mallopt parameters, from glibc's malloc.h


def keep_freed_host_memory() -> bool:
    """Tune glibc's malloc for this process (from now on); False where the C library is not glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL("libc.so.6")
    return libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1
