"""keep_large_buffers: a subscription thread receiving megabyte images stops page-faulting on every
message (the CPU the node's subscriptions cost, which on two cores comes out of inference)."""
import os
import subprocess
import sys
import textwrap

import pytest

DOMAIN_ID = 150 + (os.getpid() + 37) % 50

SUBSCRIBER = textwrap.dedent("""
    import resource, sys, threading, time
    from v2xfusion_perception.allocator import keep_large_buffers
    if sys.argv[1] == "keep":
        print(keep_large_buffers(), flush=True)
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    context = Context()
    rclpy.init(context=context, domain_id=int(sys.argv[2]))
    node = rclpy.create_node("allocator_probe", context=context)
    faults = []   # the subscription thread's minor page faults, read at each message
    node.create_subscription(Image, "probe_image",
                             lambda msg: faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt), reliable)
    publisher = node.create_publisher(Image, "probe_image", reliable)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin)
    spinner.start()
    image = Image(height=375, width=1242, encoding="rgb8", step=3 * 1242, data=bytes(375 * 3 * 1242))
    while publisher.get_subscription_count() < 1:
        time.sleep(0.01)
    for _ in range(30):
        publisher.publish(image)
        time.sleep(0.05)
    time.sleep(0.5)
    executor.shutdown()
    spinner.join()
    node.destroy_node()
    rclpy.shutdown(context=context)
    print(len(faults), (faults[-1] - faults[9]) / (len(faults) - 10))
""")


def faults_per_image(mode: str) -> tuple[str, int, float]:
    done = subprocess.run([sys.executable, "-c", SUBSCRIBER, mode, str(DOMAIN_ID)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    received, per_image = lines[-1].split()
    return lines[0], int(received), float(per_image)


@pytest.mark.timeout(90)
def test_received_megabyte_images_reuse_the_same_pages():
    line, received, per_image = faults_per_image("keep")
    assert "come from the heap" in line
    assert received == 30
    # a 1.4 MB image spans 341 pages; glibc's default maps fresh ones for nearly every message (~990 faults
    # a message on this machine), kept buffers need none after warm-up
    assert per_image < 50, per_image


@pytest.mark.timeout(90)
def test_without_it_the_same_images_fault_their_pages_in_again():
    # the reason the node applies it: the same probe without the setting
    _, received, per_image = faults_per_image("plain")
    assert received == 30
    assert per_image > 300, per_image
