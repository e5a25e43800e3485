"""Pictures for people: a frame's camera view with 3-D boxes, its bird's-eye view, data set statistics."""
from v2xfusion_tools.vis.frame import (CLASS_COLOURS, DatasetStatistics, FramePictures, class_colour,
                                       dataset_statistics, draw_bev, draw_camera, render_frame)

__all__ = ["CLASS_COLOURS", "DatasetStatistics", "FramePictures", "class_colour", "dataset_statistics",
           "draw_bev", "draw_camera", "render_frame"]
