"""Read and write PCD point clouds (DAIR-V2X-I `velodyne/*.pcd`) as (N, 4) float32 x, y, z, intensity.

Reads PCD v0.5 / v0.7 headers with `DATA ascii` or `DATA binary`, fields in any order, extra fields
ignored, any numeric TYPE/SIZE (F 4/8, I/U 1/2/4/8). Points with a NaN coordinate are kept: dropping
them is the loader's choice. `binary_compressed` (LZF) is refused with a DatasetError that says how to
convert the file: we keep no LZF decoder. Writes version 0.7, fields `x y z intensity`, F 4 each.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from v2xfusion_perception.errors import DatasetError

REQUIRED_FIELDS = ("x", "y", "z", "intensity")
ENCODINGS = ("ascii", "binary")
_HEADER_KEYS = ("VERSION", "FIELDS", "SIZE", "TYPE", "COUNT", "WIDTH", "HEIGHT", "VIEWPOINT", "POINTS", "DATA")
_NUMPY_KIND = {"F": "f", "I": "i", "U": "u"}


def read_pcd(path: str | Path) -> np.ndarray:
    """Read a PCD file. Returns (N, 4) float32 (x, y, z, intensity) in the file's units."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read PCD file: {exc.strerror}") from None
    header, body_start = _parse_header(path, raw)
    names, sizes, types, counts = header["FIELDS"], header["SIZE"], header["TYPE"], header["COUNT"]
    missing = [name for name in REQUIRED_FIELDS if name not in names]
    if missing:
        raise DatasetError(f"{path}: PCD field(s) {', '.join(missing)} missing (FIELDS {' '.join(names)}); "
                           f"x y z intensity are required")
    count = header["POINTS"]
    encoding = header["DATA"]
    if encoding == "binary_compressed":
        raise DatasetError(f"{path}: PCD DATA binary_compressed is not supported; re-save it as binary "
                           f"(e.g. pcl_convert_pcd_ascii_binary {path.name} out.pcd 1)")
    if encoding == "binary":
        dtype = np.dtype([(f"f{i}", f"<{_NUMPY_KIND[t]}{s}", (c,)) for i, (s, t, c)
                          in enumerate(zip(sizes, types, counts))])
        need = count * dtype.itemsize
        available = len(raw) - body_start
        if available < need:
            raise DatasetError(f"{path}: PCD binary data truncated: {count} points need {need} bytes, "
                               f"the file has {available}")
        table = np.frombuffer(raw, dtype=dtype, count=count, offset=body_start)
        columns = [table[f"f{names.index(name)}"][:, 0] for name in REQUIRED_FIELDS]
        return np.stack(columns, axis=1).astype(np.float32)
    if encoding == "ascii":
        return _read_ascii(path, raw[body_start:], names, counts, count)
    raise DatasetError(f"{path}: PCD DATA {encoding!r} unknown; expected ascii, binary or binary_compressed")


def write_pcd(path: str | Path, points: np.ndarray, encoding: str = "binary") -> None:
    """Write points (N, 4) float32 x, y, z, intensity as PCD v0.7, `encoding` 'binary' or 'ascii'."""
    if encoding not in ENCODINGS:
        raise DatasetError(f"PCD encoding {encoding!r} unknown; choose one of {', '.join(ENCODINGS)}")
    points = np.ascontiguousarray(np.asarray(points, dtype=np.float32).reshape(-1, 4))
    count = len(points)
    header = (
        "# .PCD v0.7 - Point Cloud Data file format\n"
        "VERSION 0.7\n"
        "FIELDS x y z intensity\n"
        "SIZE 4 4 4 4\n"
        "TYPE F F F F\n"
        "COUNT 1 1 1 1\n"
        f"WIDTH {count}\n"
        "HEIGHT 1\n"
        "VIEWPOINT 0 0 0 1 0 0 0\n"
        f"POINTS {count}\n"
        f"DATA {encoding}\n"
    ).encode("ascii")
    if encoding == "binary":
        body = points.astype("<f4").tobytes()
    else:
        # 9 significant digits round-trip every float32 exactly
        body = "".join(" ".join(f"{v:.9g}" for v in row) + "\n" for row in points.tolist()).encode("ascii")
    Path(path).write_bytes(header + body)


def _parse_header(path: Path, raw: bytes) -> tuple[dict, int]:
    header: dict = {}
    offset = 0
    while "DATA" not in header:
        end = raw.find(b"\n", offset)
        if end < 0:
            raise DatasetError(f"{path}: PCD header ends before its DATA line (not a PCD file, or truncated)")
        line = raw[offset:end].decode("ascii", errors="replace").strip()
        offset = end + 1
        if not line or line.startswith("#"):
            continue
        key, _, rest = line.partition(" ")
        key = key.upper()
        if key not in _HEADER_KEYS:
            raise DatasetError(f"{path}: PCD header line {line!r} unknown (not a PCD file?)")
        header[key] = rest.split()
    try:
        fields = header["FIELDS"]
        n = len(fields)
        sizes = [int(v) for v in header.get("SIZE", ["4"] * n)]
        types = [t.upper() for t in header.get("TYPE", ["F"] * n)]
        counts = [int(v) for v in header.get("COUNT", ["1"] * n)]
        width = int(header["WIDTH"][0])
        height = int(header.get("HEIGHT", ["1"])[0])
        points = int(header["POINTS"][0]) if "POINTS" in header else width * height
        encoding = header["DATA"][0].lower()
    except KeyError as exc:
        raise DatasetError(f"{path}: PCD header lacks the {exc.args[0]} line") from None
    except (ValueError, IndexError):
        raise DatasetError(f"{path}: PCD header SIZE / COUNT / WIDTH / HEIGHT / POINTS not integers") from None
    if not (len(sizes) == len(types) == len(counts) == n):
        raise DatasetError(f"{path}: PCD header FIELDS, SIZE, TYPE, COUNT disagree in length")
    for name, size, kind in zip(fields, sizes, types):
        if kind not in _NUMPY_KIND or (kind == "F" and size not in (4, 8)) or size not in (1, 2, 4, 8):
            raise DatasetError(f"{path}: PCD field {name!r} has unsupported TYPE {kind} SIZE {size}")
    if points != width * height or points < 0:
        raise DatasetError(f"{path}: PCD POINTS {points} != WIDTH {width} x HEIGHT {height}")
    return {"FIELDS": fields, "SIZE": sizes, "TYPE": types, "COUNT": counts, "POINTS": points,
            "DATA": encoding}, offset


def _read_ascii(path: Path, body: bytes, names: list[str], counts: list[int], count: int) -> np.ndarray:
    lines = [line for line in body.split(b"\n") if line.strip()]
    if len(lines) < count:
        raise DatasetError(f"{path}: PCD ascii data truncated: header says {count} points, found {len(lines)}")
    width = sum(counts)
    tokens = b" ".join(lines[:count]).split()
    try:
        if len(tokens) != count * width:
            raise ValueError
        table = np.asarray(tokens, dtype=np.float64).reshape(count, width)
    except ValueError:
        _raise_bad_ascii_row(path, lines[:count], width)
    starts = np.cumsum([0, *counts[:-1]])
    columns = [int(starts[names.index(name)]) for name in REQUIRED_FIELDS]
    return table[:, columns].astype(np.float32)


def _raise_bad_ascii_row(path: Path, lines: list[bytes], width: int) -> None:
    """Find the first malformed ascii row (slow path, only after the fast parse failed) and report it."""
    for i, line in enumerate(lines):
        row = line.decode("ascii", errors="replace").split()
        if len(row) != width:
            raise DatasetError(f"{path}: PCD ascii point {i} has {len(row)} values, expected {width}")
        try:
            [float(v) for v in row]
        except ValueError:
            raise DatasetError(f"{path}: PCD ascii point {i} holds a non-number: {' '.join(row)!r}") from None
    raise DatasetError(f"{path}: PCD ascii data malformed")
