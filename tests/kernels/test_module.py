"""The kernel package itself: exports, type stub, backend choice and the SYCL build path."""
from __future__ import annotations

import ast
import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import v2xfusion_kernels as vk
from v2xfusion_kernels import _core

KERNELS = Path(__file__).resolve().parents[2] / "kernels"
STUB = KERNELS / "v2xfusion_kernels" / "_core.pyi"


def _public(names):
    return {n for n in names if not n.startswith("_")}


def _stub_tree() -> ast.Module:
    return ast.parse(STUB.read_text())


def _stub_top_level() -> dict[str, ast.AST]:
    out = {}
    for node in _stub_tree().body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
    return {k: v for k, v in out.items() if not k.startswith("_")}


def test_package_reexports_every_public_name_of_core():
    assert set(vk.__all__) == _public(dir(_core))
    for name in vk.__all__:
        assert getattr(vk, name) is getattr(_core, name)


def test_stub_declares_exactly_the_public_names_of_core():
    assert set(_stub_top_level()) == _public(dir(_core))


def test_stub_argument_names_match_the_compiled_signatures():
    for name, node in _stub_top_level().items():
        if not isinstance(node, ast.FunctionDef):
            continue
        args = node.args
        stub_args = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
        first_line = getattr(_core, name).__doc__.splitlines()[0]
        compiled = re.findall(r"(\w+): ", first_line[first_line.index("(") :])
        assert stub_args == compiled, name


def test_stub_classes_list_the_compiled_properties():
    for name, node in _stub_top_level().items():
        if not isinstance(node, ast.ClassDef):
            continue
        stub_members = {f.name for f in node.body if isinstance(f, ast.FunctionDef)}
        cls = getattr(_core, name)
        compiled = {m for m, v in inspect.getmembers(cls) if isinstance(v, property)}
        assert stub_members == compiled, name


def test_host_backend_is_built_here():
    assert vk.BACKEND == "host"


def _cmake_configure(tmp_path: Path, backend: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "cmake",
            "-S",
            str(KERNELS),
            "-B",
            str(tmp_path / backend),
            f"-DV2X_KERNELS_BACKEND={backend}",
            f"-DPython_EXECUTABLE={sys.executable}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cmake_sycl_backend_is_configured_or_names_the_missing_compiler(tmp_path):
    result = _cmake_configure(tmp_path, "sycl")
    if shutil.which("icpx") or shutil.which("acpp"):
        assert result.returncode == 0, result.stderr
        assert "backend = sycl" in result.stdout
    else:
        assert result.returncode != 0
        message = " ".join(result.stderr.split())
        assert "neither icpx (oneAPI DPC++) nor acpp (AdaptiveCpp) is on PATH" in message


def test_cmake_auto_backend_falls_back_to_host_without_a_sycl_compiler(tmp_path):
    result = _cmake_configure(tmp_path, "auto")
    assert result.returncode == 0, result.stderr
    expected = "sycl" if shutil.which("icpx") or shutil.which("acpp") else "host"
    assert f"backend = {expected}" in result.stdout


def test_kernel_sources_compile_against_real_sycl_headers(tmp_path):
    """The same kernel sources, with V2X_SYCL_REAL, parse against DPC++'s <sycl/sycl.hpp>.

    The headers come from the intel-sycl-rt wheel of the environment (constraints.txt); g++ checks
    the host side of every kernel submission and the bodies' use of sycl:: types and math.
    """
    include = Path(sys.prefix) / "include"
    assert (include / "sycl" / "sycl.hpp").is_file(), "intel-sycl-rt headers missing from the venv"
    unit = tmp_path / "all_kernels.cpp"
    sources = sorted((KERNELS / "src").glob("*.cpp"))
    unit.write_text("".join(f'#include "{s}"\n' for s in sources if s.name != "bindings.cpp"))
    result = subprocess.run(
        [
            "g++",
            "-std=c++17",
            "-fsyntax-only",
            "-DV2X_SYCL_REAL",
            "-DSYCL_DISABLE_FSYCL_SYCLHPP_WARNING",
            "-Wno-deprecated-declarations",
            f"-I{include}",
            f"-I{KERNELS / 'include'}",
            f"-I{KERNELS / 'src'}",
            str(unit),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
