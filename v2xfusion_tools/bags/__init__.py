"""rosbag2 bags of our data sets: `make_bag` writes one (mcap or sqlite3), `play_bag` publishes one.

There is no `ros2 bag` without rclcpp, so both sides are ours: the rosbags library reads and writes
the files, and the player publishes each message's raw CDR through rclpy with the recorded timing.
"""
from v2xfusion_tools.bags.layout import BagError
from v2xfusion_tools.bags.make import BagSummary, make_bag
from v2xfusion_tools.bags.play import PlaySummary, play_bag

__all__ = ["BagError", "BagSummary", "PlaySummary", "make_bag", "play_bag"]
