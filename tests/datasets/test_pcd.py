"""PCD reader / writer: both encodings round-trip through an independent parser; bad files fail clearly."""
import struct

import numpy as np
import pytest

from v2xfusion_perception.errors import DatasetError
from v2xfusion_tools.datasets import pcd


def _points(count: int = 500) -> np.ndarray:
    rng = np.random.default_rng(7)
    points = rng.normal(scale=30.0, size=(count, 4)).astype(np.float32)
    points[:, 3] = rng.uniform(0, 255, count).astype(np.float32)
    points[0] = [1e-7, -123456.78, 3.4028235e38, 0.0]      # values that need all 9 digits
    return points


def _independent_parse(raw: bytes) -> tuple[dict, np.ndarray]:
    """Plain PCD parsing: header lines up to DATA, then struct / text for the body."""
    header, offset = {}, 0
    while "DATA" not in header:
        end = raw.index(b"\n", offset)
        line = raw[offset:end].decode()
        offset = end + 1
        if line.startswith("#"):
            continue
        key, *values = line.split()
        header[key] = values
    count = int(header["POINTS"][0])
    if header["DATA"][0] == "binary":
        values = struct.unpack("<" + "f" * 4 * count, raw[offset:offset + 16 * count])
    else:
        values = [float(v) for v in raw[offset:].decode().split()]
    return header, np.array(values, dtype=np.float32).reshape(count, 4)


@pytest.mark.parametrize("encoding", ["binary", "ascii"])
def test_pcd_round_trip_through_an_independent_parser(tmp_path, encoding):
    points = _points()
    path = tmp_path / f"cloud_{encoding}.pcd"
    pcd.write_pcd(path, points, encoding=encoding)
    header, parsed = _independent_parse(path.read_bytes())
    assert header["FIELDS"] == ["x", "y", "z", "intensity"] and header["DATA"] == [encoding]
    assert header["WIDTH"] == ["500"] and header["HEIGHT"] == ["1"] and header["VERSION"] == ["0.7"]
    assert np.array_equal(parsed, points)
    assert np.array_equal(pcd.read_pcd(path), points)


def _handmade(tmp_path, encoding: str, rows: int = 3):
    """A PCD with extra fields in another order and mixed types, as other tools write them."""
    header = ("VERSION .7\nFIELDS intensity x y z ring rgb\nSIZE 1 8 4 4 2 4\nTYPE U F F F U F\nCOUNT 1 1 1 1 1 1\n"
              f"WIDTH {rows}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {rows}\nDATA {encoding}\n")
    records = [(10 * i + 5, 1.5 * i, -2.0 * i, 0.25 * i, i, 0.0) for i in range(rows)]
    if encoding == "binary":
        body = b"".join(struct.pack("<BdffHf", *r) for r in records)
    else:
        body = "".join(" ".join(str(v) for v in r) + "\n" for r in records).encode()
    path = tmp_path / f"handmade_{encoding}.pcd"
    path.write_bytes(header.encode() + body)
    expected = np.array([[r[1], r[2], r[3], r[0]] for r in records], dtype=np.float32)
    return path, expected


@pytest.mark.parametrize("encoding", ["binary", "ascii"])
def test_fields_in_any_order_with_extra_fields_and_types(tmp_path, encoding):
    path, expected = _handmade(tmp_path, encoding)
    assert np.array_equal(pcd.read_pcd(path), expected)


def test_binary_compressed_is_refused_with_the_file_name(tmp_path):
    path = tmp_path / "compressed.pcd"
    path.write_bytes(b"VERSION 0.7\nFIELDS x y z intensity\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\n"
                     b"WIDTH 2\nHEIGHT 1\nPOINTS 2\nDATA binary_compressed\n\x00\x01\x02")
    with pytest.raises(DatasetError, match="binary_compressed is not supported") as error:
        pcd.read_pcd(path)
    assert str(path) in str(error.value)


def test_missing_intensity_field_is_named(tmp_path):
    path = tmp_path / "xyz.pcd"
    path.write_bytes(b"VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 1\nHEIGHT 1\n"
                     b"POINTS 1\nDATA ascii\n1 2 3\n")
    with pytest.raises(DatasetError, match=r"field\(s\) intensity missing") as error:
        pcd.read_pcd(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("encoding, cut, message", [
    ("binary", 7, "binary data truncated: 500 points need 8000 bytes"),
    ("ascii", 200, "ascii data truncated"),
])
def test_truncated_data_is_reported(tmp_path, encoding, cut, message):
    path = tmp_path / "cut.pcd"
    pcd.write_pcd(path, _points(), encoding=encoding)
    raw = path.read_bytes()
    if encoding == "ascii":
        lines = raw.split(b"\n")
        raw = b"\n".join(lines[:-cut])
    else:
        raw = raw[:-cut]
    path.write_bytes(raw)
    with pytest.raises(DatasetError, match=message) as error:
        pcd.read_pcd(path)
    assert str(path) in str(error.value)


def test_ascii_row_with_a_word_is_reported_with_its_index(tmp_path):
    path, _ = _handmade(tmp_path, "ascii")
    path.write_bytes(path.read_bytes().replace(b"\n15 ", b"\nfifteen ", 1))
    with pytest.raises(DatasetError, match="ascii point 1 holds a non-number"):
        pcd.read_pcd(path)


def test_not_a_pcd_file(tmp_path):
    path = tmp_path / "image.pcd"
    path.write_bytes(b"\x89PNG\r\n\x1a\n...")
    with pytest.raises(DatasetError, match="not a PCD file"):
        pcd.read_pcd(path)


def test_unknown_write_encoding_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="encoding 'binary_compressed' unknown"):
        pcd.write_pcd(tmp_path / "x.pcd", _points(), encoding="binary_compressed")
