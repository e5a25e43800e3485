"""The Fast DDS set-up for processes that publish camera images and LiDAR clouds (configs/ros/fastdds_large_data.xml).

Fast DDS gives each process a 512 KiB shared-memory segment for what it publishes on the same host; a
megabyte message does not fit, fragments get lost, and a reliable reader waits for the next heartbeat
(hundreds of ms) while a best-effort one loses the message. The profile raises the publisher's segment to
32 MiB. It has to be in place before the process creates its first ROS context, and it matters in the
publishing process (drivers, `v2xfusion bag play`), not in the node that reads.
"""
from __future__ import annotations

import os
from pathlib import Path

from v2xfusion_perception.config import CONFIG_ROOT

LARGE_DATA_PROFILE = CONFIG_ROOT / "ros" / "fastdds_large_data.xml"
PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"
SEGMENT_BYTES = 32 * 1024 * 1024
# Apply the profile only if /dev/shm can hold this many segments (a container's default /dev/shm is
# 64 MiB; a segment that does not fit would fail on its first write).
SEGMENTS_OF_ROOM = 4
SHM_ROOT = Path("/dev/shm")


def use_large_data_profile(environ: dict[str, str] | None = None, shm_root: Path = SHM_ROOT) -> str:
    """Point FASTDDS_DEFAULT_PROFILES_FILE at the large-data profile unless the user chose otherwise.

    Leaves the environment alone when the variable is already set, when another RMW than Fast DDS is
    selected, or when /dev/shm lacks room. Returns one line saying what was done (for a log).
    """
    environ = os.environ if environ is None else environ
    if environ.get(PROFILE_VARIABLE):
        return f"Fast DDS profile {environ[PROFILE_VARIABLE]} (from {PROFILE_VARIABLE})"
    rmw = environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    if not rmw.startswith("rmw_fastrtps"):
        return f"RMW {rmw}: no Fast DDS profile applied"
    try:
        stats = os.statvfs(shm_root)
        free = stats.f_bavail * stats.f_frsize
    except OSError:
        free = 0
    if free < SEGMENTS_OF_ROOM * SEGMENT_BYTES:
        return (f"Fast DDS defaults: {shm_root} has {free / 2**20:.0f} MiB free, less than the "
                f"{SEGMENTS_OF_ROOM * SEGMENT_BYTES // 2**20} MiB the large-data profile wants; megabyte messages "
                f"may arrive late or get lost")
    environ[PROFILE_VARIABLE] = str(LARGE_DATA_PROFILE)
    return f"Fast DDS profile {LARGE_DATA_PROFILE} (32 MiB shared-memory segment for large messages)"
