"""Bad input is one line naming the file and the fix, never a traceback."""

from __future__ import annotations

import gzip
import struct
import sys
from pathlib import Path

import pytest

import benchmark.core.datasets.fmnist as fm
from benchmark.cli.new_method import write_template
from benchmark.common.errors import UserError
from benchmark.common.plugins import load_plugins
from benchmark.common.registry import Registry

# Small stand-ins for the real shapes (60000x28x28 ...), so fake files stay tiny.
SMALL = {"train-images-idx3-ubyte": (6, 28, 28), "train-labels-idx1-ubyte": (6,),
         "t10k-images-idx3-ubyte": (4, 28, 28), "t10k-labels-idx1-ubyte": (4,)}


def idx_bytes(shape: tuple[int, ...]) -> bytes:
    """A valid uint8 IDX file: magic 0x08nn, big-endian int32 dims, then zeros."""
    size = 1
    for d in shape:
        size *= d
    return struct.pack(f">I{len(shape)}I", 0x800 + len(shape), *shape) + bytes(size)


def one_line(err: pytest.ExceptionInfo[UserError]) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with the four IDX files gzipped, in small shapes; no Debian fallback."""
    monkeypatch.setattr(fm, "SHAPES", SMALL)
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")
    src = tmp_path / "src"
    src.mkdir()
    for name, shape in SMALL.items():
        (src / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(shape)))
    return src


def test_good_files_are_staged(source: Path, tmp_path: Path):
    assert fm._stage_raw(source, tmp_path / "root")
    raw = tmp_path / "root" / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(SMALL)
    assert (raw / "t10k-labels-idx1-ubyte").read_bytes() == idx_bytes((4,))


def test_truncated_gzip_is_one_line_and_leaves_no_tmp(source: Path, tmp_path: Path):
    bad = source / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:40])
    root = tmp_path / "root"
    with pytest.raises(UserError) as err:
        fm._stage_raw(source, root)
    msg = one_line(err)
    assert str(bad) in msg and "truncated or corrupt" in msg and "EOFError" in msg
    assert "dataset-fashion-mnist" in msg and "--data-dir" in msg
    assert not list((root / "FashionMNIST" / "raw").glob(".*"))  # no temp file left


def test_not_gzip_is_one_line(source: Path, tmp_path: Path):
    bad = source / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(b"this is not gzip data at all")
    with pytest.raises(UserError, match="BadGzipFile") as err:
        fm._stage_raw(source, tmp_path / "root")
    assert str(bad) in one_line(err)


def test_corrupt_gzip_stream_is_one_line(source: Path, tmp_path: Path):
    bad = source / "train-images-idx3-ubyte.gz"
    data = bytearray(bad.read_bytes())
    data[20:40] = b"\xff" * 20  # damage the deflate stream
    bad.write_bytes(bytes(data))
    with pytest.raises(UserError) as err:
        fm._stage_raw(source, tmp_path / "root")
    assert str(bad) in one_line(err)
    assert not list((tmp_path / "root" / "FashionMNIST" / "raw").glob(".*"))  # no temp file left


def test_raw_idx_of_wrong_size_is_one_line(source: Path, tmp_path: Path):
    (source / "train-labels-idx1-ubyte.gz").unlink()
    bad = source / "train-labels-idx1-ubyte"
    bad.write_bytes(idx_bytes((6,))[:-2])  # truncated raw file
    with pytest.raises(UserError, match=r"12 bytes, expected 14") as err:
        fm._stage_raw(source, tmp_path / "root")
    assert str(bad) in one_line(err)
    assert not list((tmp_path / "root" / "FashionMNIST" / "raw").glob(".*"))  # no temp file left


def test_raw_idx_with_wrong_header_is_one_line(source: Path, tmp_path: Path):
    (source / "t10k-images-idx3-ubyte.gz").unlink()
    (source / "t10k-images-idx3-ubyte").write_bytes(idx_bytes((4,)))  # a labels file
    with pytest.raises(UserError, match="IDX header is not uint8 4x28x28"):
        fm._stage_raw(source, tmp_path / "root")


def test_real_shapes_are_checked(tmp_path: Path):
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(idx_bytes((60000,)))
    assert fm._idx_problem(path, fm.SHAPES[path.name]) is None
    path.write_bytes(idx_bytes((60000,))[:-1])
    assert fm._idx_problem(path, fm.SHAPES[path.name]) == "60007 bytes, expected 60008"
    path.write_bytes(idx_bytes((10000,)))
    assert "header" in str(fm._idx_problem(path, fm.SHAPES[path.name]))


def test_already_staged_corrupt_file_is_reported(source: Path, tmp_path: Path):
    root = tmp_path / "root"
    assert fm._stage_raw(source, root)
    staged = root / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    staged.write_bytes(staged.read_bytes()[:5])
    with pytest.raises(UserError) as err:
        fm._stage_raw(source, root)
    assert str(staged) in one_line(err)


def test_load_and_check_report_the_corrupt_file(source: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch):
    bad = source / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-6])
    monkeypatch.setattr(fm, "DEBIAN_DIR", source)  # the corrupt file is the Debian copy
    data_dir = tmp_path / "data"
    for call in (lambda: fm.check_fmnist(data_dir), lambda: fm.load_fmnist(data_dir, False)):
        with pytest.raises(UserError) as err:
            call()
        assert str(bad) in one_line(err)
        assert not list((data_dir / "FashionMNIST" / "raw").glob(".*"))  # no temp file left


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An importable, empty package `fakemethods` in tmp_path."""
    pkg = tmp_path / "fakemethods"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "good.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("fakemethods")]:
        monkeypatch.delitem(sys.modules, name)
    return pkg


def test_method_file_with_syntax_error(package: Path):
    (package / "broken.py").write_text("x = 1\ndef f(:\n    pass\n")
    with pytest.raises(UserError) as err:
        load_plugins("fakemethods", [str(package)])
    msg = one_line(err)
    assert msg.startswith("fakemethods/broken.py cannot be imported (SyntaxError at line 2: ")
    assert msg.endswith("; fix it or move it out of fakemethods/")


def test_method_file_that_raises_on_import(package: Path):
    (package / "raises.py").write_text("import math\n\nx = 1 / 0\n")
    with pytest.raises(UserError) as err:
        load_plugins("fakemethods", [str(package)])
    assert one_line(err) == ("fakemethods/raises.py cannot be imported (ZeroDivisionError at "
                             "line 3: division by zero); fix it or move it out of fakemethods/")


def test_load_plugins_imports_good_files(package: Path):
    load_plugins("fakemethods", [str(package)])
    assert sys.modules["fakemethods.good"].VALUE == 1


def test_duplicate_registration_names_both_files(package: Path):
    from benchmark.catalog import method_registry

    assert "trades" in method_registry()
    (package / "my_trades.py").write_text(
        "from benchmark.core.method import Method, register_method\n\n"
        '@register_method("trades")\nclass Copy(Method):\n    pass\n')
    with pytest.raises(UserError) as err:
        load_plugins("fakemethods", [str(package)])
    msg = one_line(err)
    assert msg.startswith("duplicate method name 'trades': ") and msg.endswith("; rename one")
    assert "methods/trades.py and " in msg and "fakemethods/my_trades.py" in msg


def test_registry_duplicate_is_user_error():
    reg: Registry[int] = Registry("thing")
    reg.add("a", 1)
    with pytest.raises(UserError) as err:
        reg.add("a", 2)
    assert one_line(err) == "duplicate thing name 'a': 1 and 2; rename one"


def test_new_method_into_missing_directory(tmp_path: Path):
    missing = tmp_path / "nope"
    with pytest.raises(UserError) as err:
        write_template("my_method", missing)
    assert one_line(err) == f"directory {missing} does not exist; create it or pass --dir DIR"


def test_new_method_into_a_file(tmp_path: Path):
    file = tmp_path / "file.txt"
    file.write_text("")
    with pytest.raises(UserError, match="is not a directory; pass a directory with --dir"):
        write_template("my_method", file)


def test_new_method_unwritable_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def deny(self: Path, *args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_text", deny)
    with pytest.raises(UserError) as err:
        write_template("my_method", tmp_path)
    msg = one_line(err)
    assert msg == (f"cannot write {tmp_path / 'my_method.py'} (Permission denied); "
                   f"make {tmp_path} writable or pass another directory with --dir DIR")
