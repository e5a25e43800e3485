"""Starts the v2xfusion node with its preset's parameters (design.md §5).

`ros2 launch v2xfusion_perception v2xfusion.launch.py preset:=kitti` loads
share/v2xfusion_perception/configs/ros/kitti.param.yaml; pipeline, precision, device and artifacts_dir
override that file only when given; the three input topics are remapped onto the node's private
~/input/* names. The launch file only routes: the node validates every value.
"""
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

PACKAGE = "v2xfusion_perception"
# Arguments that override the params file when not left empty.
OVERRIDES = {
    "pipeline": ("A (PointPillars split) | B (SECOND unified); empty: the params file's", ["", "A", "B"]),
    "precision": ("fp32 | fp16 | int8; empty: the params file's", ["", "fp32", "fp16", "int8"]),
    "device": ("OpenVINO device CPU | GPU | AUTO; empty: the params file's", ["", "CPU", "GPU", "AUTO"]),
    "artifacts_dir": ("folder holding manifest.json (artifacts/<preset>/<pipeline>); empty: the params file's",
                      None),
}
TOPICS = {
    "image_topic": ("~/input/image", "/camera/image_raw", "sensor_msgs/Image (rgb8 or bgr8)"),
    "camera_info_topic": ("~/input/camera_info", "/camera/camera_info", "sensor_msgs/CameraInfo of that image"),
    "pointcloud_topic": ("~/input/pointcloud", "/lidar/points", "sensor_msgs/PointCloud2 with x, y, z, intensity"),
}


def _node(context):
    preset = LaunchConfiguration("preset").perform(context)
    params_file = PathJoinSubstitution([FindPackageShare(PACKAGE), "configs", "ros", f"{preset}.param.yaml"])
    overrides = {name: LaunchConfiguration(name).perform(context) for name in OVERRIDES}
    parameters = {name: value for name, value in overrides.items() if value}
    reliability = LaunchConfiguration("input_reliability").perform(context)
    if reliability:
        # rclpy's standard QoS override parameters, keyed by the remapped (resolved) topic names
        for argument in TOPICS:
            topic = LaunchConfiguration(argument).perform(context)
            parameters[f"qos_overrides.{topic}.subscription.reliability"] = reliability
    return [Node(
        package=PACKAGE, executable="v2xfusion_node", name="v2xfusion", output="screen",
        parameters=[params_file, parameters],
        remappings=[(private, LaunchConfiguration(argument)) for argument, (private, _, _) in TOPICS.items()],
    )]


def generate_launch_description() -> LaunchDescription:
    arguments = [DeclareLaunchArgument("preset", default_value="v2x", choices=["kitti", "v2x"],
                                       description="data set preset: picks configs/ros/<preset>.param.yaml")]
    arguments += [DeclareLaunchArgument(name, default_value="", description=description, choices=choices)
                  for name, (description, choices) in OVERRIDES.items()]
    arguments.append(DeclareLaunchArgument(
        "input_reliability", default_value="", choices=["", "best_effort", "reliable"],
        description="QoS reliability of the three input subscriptions; empty: sensor-data QoS (best effort). "
                    "reliable for bag replay and publishers of large messages that offer it"))
    arguments += [DeclareLaunchArgument(name, default_value=default, description=f"{description} topic")
                  for name, (_, default, description) in TOPICS.items()]
    return LaunchDescription([*arguments, OpaqueFunction(function=_node)])
