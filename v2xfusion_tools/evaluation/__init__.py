"""Detection evaluation: KITTI-style AP (2-D box, BEV, 3-D; R11 / R40) and its DAIR-V2X-I variant.

`iou` (image-box, rotated BEV and 3-D overlaps of camera-rect boxes), `kitti_ap` (the devkit's
matching and AP, protocols KITTI and DAIR_V2X_I), `io` (folders of label_2 / prediction txt files),
`lidar_detections` (internal LiDAR-frame detections as KITTI prediction labels).
"""
