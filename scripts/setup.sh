#!/usr/bin/env bash
# One idempotent set-up for a fresh clone: the .venv, every pinned dependency (constraints.txt), the
# project in editable mode, the C++ kernels, and the ROS 2 environment. Each step prints what it does
# and how long it took; a step whose inputs have not changed since it last succeeded is skipped
# (stamps in .venv/.stamps hold a hash of the step's inputs).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check -q)
STAMPS="$VENV/.stamps"
PYTHON=${PYTHON:-python3}
T_ALL=$(date +%s%N)

# Hash the content of files (and of every file under folders) named as arguments.
inputs_hash() {
    local f
    for f in "$@"; do
        if [ -d "$f" ]; then
            find "$f" -type f \( -path '*/build/*' -o -path '*/__pycache__/*' -o -name '*.so' \) -prune -o -type f -print \
                | LC_ALL=C sort | xargs -r sha256sum
        elif [ -e "$f" ]; then
            sha256sum "$f"
        fi
    done | sha256sum | cut -c1-16
}

# Seconds since a `date +%s%N` reading, with one decimal.
elapsed() {
    local ms=$((($(date +%s%N) - $1) / 1000000))
    printf '%d.%d s' $((ms / 1000)) $((ms % 1000 / 100))
}

# step NAME "WHAT IT DOES" HASH command...: run the command unless NAME's stamp holds HASH.
step() {
    local name=$1 what=$2 hash=$3
    shift 3
    local stamp="$STAMPS/$name"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
        printf '[setup] %-9s up to date (%s)\n' "$name" "$what"
        return 0
    fi
    printf '[setup] %-9s %s ...\n' "$name" "$what"
    local t0
    t0=$(date +%s%N)
    "$@"
    mkdir -p "$STAMPS"
    echo "$hash" >"$stamp"
    printf '[setup] %-9s done in %s\n' "$name" "$(elapsed "$t0")"
}

make_venv() {
    "$PYTHON" -m venv "$VENV"
}

install_python_deps() {
    "${PIP[@]}" install -c constraints.txt pip setuptools wheel
    # torch is pinned to the CPU build (constraints.txt); the tools extra would otherwise pull CUDA.
    "${PIP[@]}" install -c constraints.txt -e ".[tools,test]"
}

build_kernels() {
    # The DPC++ runtime + kernel compiler + OpenCL CPU device (design.md §4): the sycl backend compiles
    # the same kernel bodies at run time; V2X_KERNELS_SYCL_RTC=on makes a missing wheel a build error.
    "${PIP[@]}" install -c constraints.txt scikit-build-core pybind11 intel-sycl-rt intel-cmplr-lib-ur intel-opencl-rt
    "${PIP[@]}" install -c constraints.txt --no-build-isolation -C cmake.define.V2X_KERNELS_SYCL_RTC=on ./kernels
}

build_ov_extension() {
    # The OpenVINO custom ops of Pipeline B's unified model, built against the openvino wheel's headers.
    "${PIP[@]}" install -c constraints.txt --no-build-isolation ./ov_extension
}

build_ros() {
    bash "$ROOT/ros2_ws/build.sh" "$VENV"
}

if [ -e "$VENV" ] && ! "$PY" -c 'import sys' >/dev/null 2>&1; then
    echo "[setup] .venv is broken (its python does not start): recreating it"
    rm -rf "$VENV"
fi
step venv "create .venv with $("$PYTHON" --version 2>&1)" "$("$PYTHON" -c 'import sys; print(sys.version)' | sha256sum | cut -c1-16)" make_venv
step deps "install pinned Python dependencies + this project (editable)" "$(inputs_hash constraints.txt setup.py setup.cfg pyproject.toml)" install_python_deps
if [ -f kernels/pyproject.toml ]; then
    step kernels "build the C++ kernels (v2xfusion_kernels: host OpenMP build + run-time SYCL backend)" "$(inputs_hash constraints.txt kernels)" build_kernels
fi
if [ -f ov_extension/pyproject.toml ]; then
    step ovext "build the OpenVINO extension (v2xfusion_ov_extension: BevPoolV2, SparseConvolution, SparseToDense)" "$(inputs_hash constraints.txt ov_extension kernels/src)" build_ov_extension
fi
if [ -f ros2_ws/build.sh ]; then
    # build.sh keeps its own per-step stamps; it is cheap to call when nothing changed.
    printf '[setup] %-9s %s\n' ros2 "ROS 2 wheels + colcon workspace (ros2_ws/build.sh)"
    build_ros
fi
printf '[setup] all steps finished in %s; environment: %s\n' "$(elapsed "$T_ALL")" "$VENV"
