"""The one table mapping each data set's label types onto our classes (design.md §2).

Our classes are those of the presets: Car, Pedestrian, Cyclist (as CUDA-V2XFusion reports them).

| ours       | KITTI label_2 type | DAIR-V2X-I type                                  | nuScenes-style category (infos)  |
|------------|--------------------|--------------------------------------------------|----------------------------------|
| Car        | Car                | Car, Van, Truck, Bus                             | vehicle.car                      |
| Pedestrian | Pedestrian         | Pedestrian                                       | human.pedestrian.adult           |
| Cyclist    | Cyclist            | Cyclist, Motorcyclist, Tricyclist, Barrowlist    | vehicle.bicycle                  |
| (ignored)  | Van, Truck, Person_sitting, Tram, Misc, DontCare | Trafficcone, and any other type | -                      |

KITTI keeps its own neighbour classes (Van, Person_sitting) out of Car / Pedestrian, as its
benchmark and mmdet3d do; DAIR-V2X-I's vehicle and rider types fold into Car and Cyclist, as
BEVHeight's and CUDA-V2XFusion's three-class evaluation does.
"""
from __future__ import annotations

CLASSES = ("Car", "Pedestrian", "Cyclist")

KITTI_TO_CLASS = {"Car": "Car", "Pedestrian": "Pedestrian", "Cyclist": "Cyclist"}

DAIR_TO_CLASS = {
    "Car": "Car", "Van": "Car", "Truck": "Car", "Bus": "Car",
    "Pedestrian": "Pedestrian",
    "Cyclist": "Cyclist", "Motorcyclist": "Cyclist", "Tricyclist": "Cyclist", "Barrowlist": "Cyclist",
}

CLASS_TO_NUSCENES = {"Car": "vehicle.car", "Pedestrian": "human.pedestrian.adult", "Cyclist": "vehicle.bicycle"}
NUSCENES_TO_CLASS = {category: name for name, category in CLASS_TO_NUSCENES.items()}


def class_of(layout: str, label_type: str) -> str | None:
    """Our class for a data set's label type, None where the type is ignored. layout: 'kitti' | 'dair'."""
    table = KITTI_TO_CLASS if layout == "kitti" else DAIR_TO_CLASS
    return table.get(label_type)
