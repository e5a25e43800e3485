"""The kernel package itself: exports, type stubs, backend classes and the SYCL build path."""
from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import v2xfusion_kernels as vk
from v2xfusion_kernels import _core, backends

KERNELS = Path(__file__).resolve().parents[2] / "kernels"
PACKAGE = KERNELS / "v2xfusion_kernels"
KERNEL_FUNCTIONS = ("voxelize_hard", "voxelize_dynamic", "pillar_scatter", "frustum_points", "bev_pool_geometry",
                    "bev_pool", "sparse_conv_rulebook", "sparse_conv", "sparse_to_dense", "centerhead_decode",
                    "rotated_nms", "circle_nms", "bev_iou")


def _sycl():
    return backends._sycl_module()


def _public(names):
    return {n for n in names if not n.startswith("_")}


def _stub_classes() -> dict[str, ast.ClassDef]:
    """Every class of both stubs (the private base _Kernels included), by name."""
    out = {}
    for stub in ("_core.pyi", "_sycl.pyi"):
        out.update({n.name: n for n in ast.parse((PACKAGE / stub).read_text()).body if isinstance(n, ast.ClassDef)})
    return out


def _stub_top_level(stub: str) -> dict[str, ast.AST]:
    out = {}
    for node in ast.parse((PACKAGE / stub).read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
    return {k: v for k, v in out.items() if not k.startswith("_")}


def _class_members(node: ast.ClassDef) -> dict[str, ast.FunctionDef]:
    """A stub class's functions, those of its stub base classes included."""
    classes = _stub_classes()
    members = {}
    for base in node.bases:
        if isinstance(base, ast.Name) and base.id in classes:
            members.update(_class_members(classes[base.id]))
    members.update({f.name: f for f in node.body if isinstance(f, ast.FunctionDef)})
    return members


def _is_property(f: ast.FunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "property" for d in f.decorator_list)


def _argument_names(f: ast.FunctionDef) -> list[str]:
    return [a.arg for a in f.args.posonlyargs + f.args.args + f.args.kwonlyargs]


def _compiled_argument_names(fn) -> list[str]:
    first_line = fn.__doc__.splitlines()[0]
    return re.findall(r"(\w+): ", first_line[first_line.index("(") :])


def _modules():
    return (("_core.pyi", _core), ("_sycl.pyi", _sycl()))


def test_package_reexports_core_and_the_backend_choice():
    assert set(vk.__all__) == _public(dir(_core)) | set(backends.__all__)
    for name in _public(dir(_core)):
        assert getattr(vk, name) is getattr(_core, name)
    for name in backends.__all__:
        assert getattr(vk, name) is getattr(backends, name)


@pytest.mark.parametrize(("stub", "module"), _modules(), ids=["_core", "_sycl"])
def test_stub_declares_exactly_the_public_names_of_the_module(stub, module):
    assert set(_stub_top_level(stub)) == _public(dir(module))


@pytest.mark.parametrize(("stub", "module"), _modules(), ids=["_core", "_sycl"])
def test_stub_argument_names_match_the_compiled_signatures(stub, module):
    for name, node in _stub_top_level(stub).items():
        if isinstance(node, ast.FunctionDef):
            assert _argument_names(node) == _compiled_argument_names(getattr(module, name)), name
        elif isinstance(node, ast.ClassDef):
            for method, f in _class_members(node).items():
                if not _is_property(f) and not method.startswith("_"):
                    compiled = _compiled_argument_names(getattr(getattr(module, name), method))
                    assert _argument_names(f) == compiled, f"{name}.{method}"


@pytest.mark.parametrize(("stub", "module"), _modules(), ids=["_core", "_sycl"])
def test_stub_classes_list_the_compiled_properties_and_methods(stub, module):
    for name, node in _stub_top_level(stub).items():
        if not isinstance(node, ast.ClassDef):
            continue
        members = _class_members(node)
        cls = getattr(module, name)
        own = vars(cls)  # what the module defines, not what a base (Exception) brings
        compiled_properties = {m for m, v in own.items() if isinstance(v, property)}
        compiled_methods = {m for m, v in own.items() if callable(v) and not m.startswith("_")}
        stub_properties = {m for m, f in members.items() if _is_property(f)}
        stub_methods = {m for m, f in members.items() if not _is_property(f) and not m.startswith("_")}
        assert stub_properties == compiled_properties, name
        assert stub_methods == compiled_methods, name


def test_both_kernels_classes_offer_every_kernel_function_with_its_documentation():
    for cls in (_core.HostKernels, _sycl().SyclKernels):
        for name in KERNEL_FUNCTIONS:
            function_doc = getattr(_core, name).__doc__.split("\n", 1)[1]
            assert getattr(cls, name).__doc__.split("\n", 1)[1] == function_doc, f"{cls.__name__}.{name}"


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
