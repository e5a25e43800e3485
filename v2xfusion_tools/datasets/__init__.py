"""Data sets on disk: the raw file formats of KITTI and DAIR-V2X-I, read and written exactly.

`kitti_format` (calib / label_2 / velodyne / ImageSets), `dair_format` (data_info.json, calib and
label JSONs, split file) and `pcd` (PCD point clouds) are the dataset boundary: every reader raises
DatasetError naming the file and field, and box conversions go through v2xfusion_perception.boxes.
"""
