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

The V2X infos (design.md §6) name categories nuScenes-style. KITTI objects are written through our class
(CLASS_TO_NUSCENES), so a KITTI Van stays out of the infos as it stays out of Car. DAIR objects keep the
finer names BEVHeight's scripts/gen_info_dair.py writes (DAIR_TO_NUSCENES: Truck -> vehicle.truck, Bus ->
vehicle.bus.rigid); NUSCENES_TO_CLASS folds those back exactly as DAIR_TO_CLASS does, the same fold as
CUDA-V2XFusion's evaluator (car / van / truck / bus -> Car). BEVHeight's table spells the cone
"traffic_cone", which never matches DAIR's "Trafficcone", so cones never reach its infos; ours leave them
out too.
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

DAIR_TO_NUSCENES = {
    "Car": "vehicle.car", "Van": "vehicle.car", "Truck": "vehicle.truck", "Bus": "vehicle.bus.rigid",
    "Pedestrian": "human.pedestrian.adult",
    "Cyclist": "vehicle.bicycle", "Motorcyclist": "vehicle.bicycle", "Tricyclist": "vehicle.bicycle",
    "Barrowlist": "vehicle.bicycle",
}

NUSCENES_TO_CLASS = {
    "vehicle.car": "Car", "vehicle.truck": "Car", "vehicle.bus.rigid": "Car",
    "human.pedestrian.adult": "Pedestrian",
    "vehicle.bicycle": "Cyclist",
}


def class_of(layout: str, label_type: str) -> str | None:
    """Our class for a data set's label type, None where the type is ignored. layout: 'kitti' | 'dair'."""
    table = KITTI_TO_CLASS if layout == "kitti" else DAIR_TO_CLASS
    return table.get(label_type)


def nuscenes_category(layout: str, label_type: str) -> str | None:
    """The nuScenes-style category an infos file carries for a data set's label type (None: left out)."""
    if layout == "dair":
        return DAIR_TO_NUSCENES.get(label_type)
    name = class_of(layout, label_type)
    return None if name is None else CLASS_TO_NUSCENES[name]
