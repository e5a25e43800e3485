"""Keep freed megabyte buffers in the process instead of handing them back to the kernel (glibc malloc).

Every image and cloud the node receives passes through several fresh multi-megabyte buffers (the DDS
reader's copy, the serialized message, the Python message). By default glibc serves such sizes with
mmap and returns them with munmap, or trims them off the heap, so each message pays for thousands of
page faults: 11 ms of CPU per KITTI image + cloud pair in the subscribing thread on this machine, against
3 ms with the buffers kept. On two cores that CPU comes straight out of inference.
"""
from __future__ import annotations

import ctypes
import platform

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Serve allocations up to 32 MiB (glibc's largest mmap threshold on 64-bit) from the heap, and trim the
# heap only when 512 MiB at its top are free: after warm-up the same pages are reused frame after frame.
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 512 * 1024 * 1024


def keep_large_buffers() -> str:
    """Apply the settings above to this process's allocator; returns one line saying what was done."""
    if platform.libc_ver()[0] != "glibc":
        return "allocator: not glibc, left as it is"
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return "allocator: mallopt not found, left as it is"
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    if mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) != 1 or mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) != 1:
        return "allocator: glibc refused the thresholds, left as it is"
    return (f"allocator: buffers up to {MMAP_THRESHOLD_BYTES >> 20} MiB come from the heap and are reused "
            f"(trim above {TRIM_THRESHOLD_BYTES >> 20} MiB free)")
