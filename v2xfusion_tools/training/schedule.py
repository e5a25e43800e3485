"""Learning rate per optimizer step, a pure function of the step (so a resumed run needs only the step)."""
from __future__ import annotations

import math

from v2xfusion_tools.training.settings import ScheduleSettings


def _cosine(start: float, end: float, fraction: float) -> float:
    """Half a cosine from start (fraction 0) to end (fraction 1)."""
    return end + (start - end) * (1.0 + math.cos(math.pi * min(max(fraction, 0.0), 1.0))) / 2.0


def learning_rate(step: int, total_steps: int, peak: float, schedule: ScheduleSettings) -> float:
    """The learning rate of optimizer step `step` (0-based) of `total_steps`."""
    warmup = int(round(schedule.warmup_fraction * total_steps))
    low, end = peak * schedule.start_fraction, peak * schedule.end_fraction
    if step < warmup:
        fraction = step / warmup
        if schedule.type == "onecycle":
            return _cosine(low, peak, fraction)
        return low + (peak - low) * fraction
    if schedule.type == "constant":
        return peak
    return _cosine(peak, end, (step - warmup) / max(total_steps - warmup, 1))
