"""Data pipeline of training, evaluation and pictures: V2X infos -> augmented samples -> model batches.

`settings` (the config's `data:` section), `transforms` (resize / crop, global augmentation, range
filters, ground plane: pure functions), `dataset` (V2XDataset: one frame -> Sample), `collate`
(Samples -> FrameBatch), `loader` (the split's data set, the global batch sampler, the DataLoader).
"""
from v2xfusion_tools.data.collate import FrameBatch, collate
from v2xfusion_tools.data.dataset import FrameMeta, Sample, V2XDataset
from v2xfusion_tools.data.loader import GlobalBatchSampler, batches, build_dataset, make_loader
from v2xfusion_tools.data.settings import DataSettings, data_settings

__all__ = ["DataSettings", "FrameBatch", "FrameMeta", "GlobalBatchSampler", "Sample", "V2XDataset", "batches",
           "build_dataset", "collate", "data_settings", "make_loader"]
