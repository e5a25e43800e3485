"""Synthetic data sets: seeded procedural scenes written in the raw KITTI or DAIR-V2X-I layout.

`generate(cfg, preset, frames, out_dir, seed, progress=...)` is the entry point. A frame is a flat
textured ground with cars, pedestrians and cyclists as boxes (scene.py), scanned by a ray-cast
multi-beam LiDAR (lidar.py) and pictured by a camera with the same calibration (camera.py, rig.py);
labels follow each data set's own rules (kitti_layout.py, dair_layout.py). Same seed, same bytes.
"""
from v2xfusion_tools.synth.generate import LAYOUTS, SynthSummary, generate, split_indices

__all__ = ["LAYOUTS", "SynthSummary", "generate", "split_indices"]
