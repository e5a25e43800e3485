"""Package metadata for pip (`pip install -e .`) and colcon (ament_python) alike.

Versions are not pinned here: installs go through `-c constraints.txt` (scripts/setup.sh). The runtime
(`v2xfusion_perception`) needs only the base requirements; the offline tools need the `tools` extra.
"""
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "v2xfusion_perception"
HERE = Path(__file__).resolve().parent


def _tree(folder: str, pattern: str) -> list[tuple[str, list[str]]]:
    """data_files entries installing every file of `folder` matching `pattern` under share/PACKAGE."""
    entries: dict[str, list[str]] = {}
    for path in sorted((HERE / folder).rglob(pattern)):
        if path.is_file():
            rel = path.relative_to(HERE)
            entries.setdefault(str(Path("share", PACKAGE, rel.parent)), []).append(str(rel))
    return sorted(entries.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    description="Camera + LiDAR BEVFusion 3D detection for ROS 2 on OpenVINO",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["v2xfusion_perception*", "v2xfusion_tools*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *_tree("configs", "*.yaml"),
        *_tree("configs", "*.xml"),
        *_tree("launch", "*.launch.py"),
    ],
    install_requires=["numpy", "pyyaml", "openvino", "pillow", "rich", "typer"],
    extras_require={
        "tools": ["torch", "spconv", "onnx", "onnxruntime", "onnxscript", "nncf", "rosbags", "tqdm", "imageio",
                  "imageio-ffmpeg", "pyquaternion"],
        "test": ["pytest", "pytest-timeout"],
    },
    entry_points={
        "console_scripts": [
            "v2xfusion = v2xfusion_tools.cli:main",
            "v2xfusion_node = v2xfusion_perception.node:main",
        ],
    },
    zip_safe=False,
)
