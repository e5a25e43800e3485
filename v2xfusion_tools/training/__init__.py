"""Training, evaluation and inference pictures of the PyTorch models (guide §4.2.1-4.2.2, §5.2.1-5.2.2).

`settings` (the config's `train:` section), `schedule` (learning rate per step), `distributed` (one
process or torchrun's group), `checkpoints` (weights + config per epoch, resume state), `metrics_log`
(run_dir/metrics.csv), `loop` (`train`), `evaluate` (predict a split, KITTI-style AP), `visualize`
(camera + BEV pictures of predictions).
"""
