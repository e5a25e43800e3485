"""The class table: infos categories fold back onto our classes exactly as the raw readers map types."""
from v2xfusion_tools.datasets.classes import (
    CLASSES,
    DAIR_TO_CLASS,
    DAIR_TO_NUSCENES,
    NUSCENES_TO_CLASS,
    class_of,
    nuscenes_category,
)

DAIR_TYPES = ("Car", "Van", "Truck", "Bus", "Pedestrian", "Cyclist", "Motorcyclist", "Tricyclist", "Barrowlist",
              "Trafficcone")
KITTI_TYPES = ("Car", "Van", "Truck", "Pedestrian", "Person_sitting", "Cyclist", "Tram", "Misc", "DontCare")


def test_dair_categories_fold_back_to_the_class_the_raw_reader_gives():
    for label_type in DAIR_TYPES:
        category = nuscenes_category("dair", label_type)
        assert (NUSCENES_TO_CLASS[category] if category else None) == class_of("dair", label_type)
    assert DAIR_TO_NUSCENES["Truck"] == "vehicle.truck" and DAIR_TO_NUSCENES["Bus"] == "vehicle.bus.rigid"
    assert set(DAIR_TO_NUSCENES) == set(DAIR_TO_CLASS)


def test_kitti_categories_are_written_only_for_our_classes():
    written = {t: nuscenes_category("kitti", t) for t in KITTI_TYPES}
    assert written == {"Car": "vehicle.car", "Van": None, "Truck": None, "Pedestrian": "human.pedestrian.adult",
                       "Person_sitting": None, "Cyclist": "vehicle.bicycle", "Tram": None, "Misc": None,
                       "DontCare": None}
    assert set(NUSCENES_TO_CLASS.values()) == set(CLASSES)
