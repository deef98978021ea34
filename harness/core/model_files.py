"""Header-only reads of model files, so that a broken file is refused before any model loads.

A safetensors file is an 8-byte little-endian header length, a UTF-8 JSON header (tensor name -> dtype, shape and
`data_offsets` into the data after the header) and the data, which its tensors cover exactly. A GGUF file is the
magic `GGUF`, a version, two counts, the metadata, a tensor table and the aligned tensor data. Each reader here reads
only the header (and the file's size) and raises a `HarnessError` that names the file, and the tensor or key.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.files import read_utf8

MAX_HEADER = 100_000_000  # the largest header safetensors itself reads
# bits per element of each dtype safetensors knows
DTYPE_BITS = {
    "F64": 64, "F32": 32, "F16": 16, "BF16": 16, "F8_E4M3": 8, "F8_E4M3FNUZ": 8, "F8_E5M2": 8, "F8_E5M2FNUZ": 8,
    "F8_E8M0": 8, "F6_E2M3": 6, "F6_E3M2": 6, "F4": 4, "C64": 64, "I64": 64, "I32": 32, "I16": 16, "I8": 8,
    "U64": 64, "U32": 32, "U16": 16, "U8": 8, "BOOL": 8,
}  # fmt: skip
FLOAT_DTYPES = frozenset(d for d in DTYPE_BITS if d.startswith(("F", "BF")))
RESAVE = "the file is damaged or was cut short: copy it again, or save it again with save_pretrained"


@dataclass(frozen=True)
class TensorHeader:
    """One tensor's entry in a safetensors header."""

    dtype: str
    shape: tuple[int, ...]
    offsets: tuple[int, int]  # [begin, end) in the data after the header

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES


def where_of(path: Path, key: str | None) -> str:
    """`FILE (KEY)`: the file, and the config key that named the model it belongs to."""
    return f"{path} ({key})" if key else str(path)


# ---------------------------------------------------------------- JSON files


def read_json_object(path: Path, *, what: str, key: str | None = None, fix: str) -> dict[str, Any]:
    """A JSON file that must hold an object (a model's config.json, an adapter_config.json)."""
    text = read_utf8(path, what=what)
    try:
        data = json.loads(text)
    except ValueError as e:
        raise HarnessError(f"{path.name} is not valid JSON ({e})", where=where_of(path, key), fix=fix) from None
    if not isinstance(data, dict):
        raise HarnessError(
            f"{path.name} holds a JSON {_json_type(data)}, not an object", where=where_of(path, key), fix=fix
        )
    return data


def _json_type(value: Any) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


# ---------------------------------------------------------------- safetensors


def read_safetensors_header(path: Path, *, key: str | None = None) -> dict[str, TensorHeader]:
    """The tensors a safetensors file holds (name -> dtype, shape, offsets), read from its header alone.

    Refuses, naming the file (and tensor): a file too short for the header length, a header length past the end of
    the file, a header that is not a UTF-8 JSON object, an entry without a valid dtype, shape or data_offsets,
    offsets that do not match shape x dtype size, and data that is truncated, overlaps, or leaves bytes uncovered."""
    path = Path(path)
    where = where_of(path, key)
    raw, data_size = _raw_header(path, where)
    header = _json_header(raw, where)
    tensors = {name: _tensor(name, entry, where) for name, entry in header.items() if name != "__metadata__"}
    _check_layout(tensors, data_size, where)
    return tensors


def _raw_header(path: Path, where: str) -> tuple[bytes, int]:
    """The header's bytes, and the size of the data after it."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 8:
                raise HarnessError(
                    f"not a safetensors file: it is {size} bytes, shorter than the 8-byte header length every "
                    "safetensors file starts with",
                    where=where,
                    fix=RESAVE,
                )
            (n,) = struct.unpack("<Q", f.read(8))
            if n > size - 8:
                raise HarnessError(
                    f"not a safetensors file, or a truncated one: its first 8 bytes give a header of {n} bytes, "
                    f"but only {size - 8} bytes follow",
                    where=where,
                    fix=RESAVE,
                )
            if n > MAX_HEADER:
                raise HarnessError(
                    f"the header is {n} bytes; safetensors reads headers of at most {MAX_HEADER} bytes",
                    where=where,
                    fix=RESAVE,
                )
            return f.read(n), size - 8 - n
    except OSError as e:
        raise HarnessError(f"cannot read the file: {e.strerror or e}", where=where) from None


def _json_header(raw: bytes, where: str) -> dict[str, Any]:
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise HarnessError(
            f"not a safetensors file: its header is not UTF-8 JSON ({type(e).__name__}: {str(e)[:120]})",
            where=where,
            fix=RESAVE,
        ) from None
    if not isinstance(header, dict):
        raise HarnessError(
            f"not a safetensors file: its header is a JSON {_json_type(header)}, not an object", where=where, fix=RESAVE
        )
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise HarnessError("the header's __metadata__ is not an object of strings", where=where, fix=RESAVE)
    return header


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tensor(name: str, entry: Any, where: str) -> TensorHeader:
    def bad(problem: str) -> HarnessError:
        return HarnessError(f"tensor {name!r} in the header: {problem}", where=where, fix=RESAVE)

    if not isinstance(entry, dict):
        raise bad(f"its entry is a JSON {_json_type(entry)}, not an object with dtype, shape and data_offsets")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_BITS:
        raise bad(f"dtype {dtype!r} is not a safetensors dtype ({', '.join(DTYPE_BITS)})")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise bad(f"shape {shape!r} is not a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
        raise bad(f"data_offsets {offsets!r} is not a pair of non-negative integers [begin, end]")
    begin, end = offsets
    bits = math.prod(shape) * DTYPE_BITS[dtype]
    if end < begin or bits % 8 or end - begin != bits // 8:
        raise bad(
            f"data_offsets [{begin}, {end}] hold {end - begin} bytes, but shape {shape} of {dtype} needs "
            f"{bits / 8:g} bytes"
        )
    return TensorHeader(dtype, tuple(shape), (begin, end))


def _check_layout(tensors: dict[str, TensorHeader], data_size: int, where: str) -> None:
    """The tensors' data lies inside the file and covers the data after the header exactly (as safetensors asks)."""
    pos = 0
    for name, t in sorted(tensors.items(), key=lambda item: item[1].offsets):
        begin, end = t.offsets
        if end > data_size:
            raise HarnessError(
                f"the file is truncated: tensor {name!r} ends at byte {end} of the data, but only {data_size} bytes "
                "of data follow the header",
                where=where,
                fix=RESAVE,
            )
        if begin != pos:
            what = "overlaps the tensor before it" if begin < pos else f"leaves {begin - pos} bytes unused before it"
            raise HarnessError(f"tensor {name!r} (data_offsets {list(t.offsets)}) {what}", where=where, fix=RESAVE)
        pos = end
    if pos != data_size:
        raise HarnessError(
            f"{data_size - pos} bytes follow the last tensor's data: the header does not describe the whole file",
            where=where,
            fix=RESAVE,
        )


# ---------------------------------------------------------------- GGUF

GGUF_VERSIONS = (2, 3)  # the versions transformers reads
_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9
GGUF_FIX = "the file is damaged or not a GGUF file: copy or export it again (e.g. llama.cpp's convert_hf_to_gguf.py)"


class _Broken(Exception):
    """A GGUF header that does not parse (raised as a HarnessError naming the file)."""


def check_gguf_header(path: Path, *, key: str | None = None) -> None:
    """Refuse a GGUF file whose header does not parse: the magic, the version, every metadata entry, the tensor
    table, and that each tensor's data lies inside the file. Reads no tensor data."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
            if magic != b"GGUF":
                raise _Broken(f"not a GGUF file: it starts with {magic!r}, not the magic bytes b'GGUF'")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as blob:
                _GgufReader(blob).check()
    except _Broken as e:
        raise HarnessError(str(e), where=where_of(path, key), fix=GGUF_FIX) from None
    except OSError as e:
        raise HarnessError(f"cannot read the file: {e.strerror or e}", where=where_of(path, key)) from None


class _GgufReader:
    """Walks a GGUF header from the start, checking every length and count against the file's size."""

    def __init__(self, blob: mmap.mmap):
        self.blob = blob
        self.pos = 4

    def check(self) -> None:
        version, n_tensors, n_meta = self.take("<IQQ", "the header")
        if version not in GGUF_VERSIONS:
            raise _Broken(f"GGUF version {version}; transformers reads versions 2 and 3")
        self.fits(n_meta, 12, "metadata entries")
        meta = {}
        for i in range(n_meta):
            name = self.string(f"metadata key {i}")
            (kind,) = self.take("<I", f"metadata {name!r}")
            meta[name] = self.value(kind, name)
        if not isinstance(meta.get("general.architecture"), str):
            raise _Broken("the metadata has no general.architecture, which transformers needs to build the model")
        align = meta.get("general.alignment", 32)
        if not isinstance(align, int) or align <= 0:
            raise _Broken(f"metadata general.alignment is {align!r}, not a positive integer")
        self.fits(n_tensors, 24, "tensors")
        table = [self.tensor(i) for i in range(n_tensors)]
        start = -(-self.pos // align) * align
        for name, offset, nbytes in table:
            if start + offset + nbytes > len(self.blob):
                raise _Broken(
                    f"the file is truncated: tensor {name!r} ends at byte {start + offset + nbytes}, but the file "
                    f"has {len(self.blob)} bytes"
                )

    def take(self, fmt: str, what: str) -> tuple[Any, ...]:
        try:
            values = struct.unpack_from(fmt, self.blob, self.pos)
        except struct.error:
            raise _Broken(f"the header ends early, in {what} at byte {self.pos}: the file is truncated") from None
        self.pos += struct.calcsize(fmt)
        return values

    def fits(self, count: int, min_size: int, what: str) -> None:
        if count * min_size > len(self.blob) - self.pos:
            raise _Broken(f"the header counts {count} {what}, more than the rest of the file holds: it is truncated")

    def string(self, what: str) -> str:
        (n,) = self.take("<Q", what)
        if n > len(self.blob) - self.pos:
            raise _Broken(f"{what} at byte {self.pos - 8} is {n} bytes long, past the end of the file")
        start, self.pos = self.pos, self.pos + n
        try:
            return self.blob[start : self.pos].decode("utf-8")
        except UnicodeDecodeError:
            raise _Broken(f"{what} at byte {start} is not UTF-8") from None

    def value(self, kind: int, name: str) -> Any:
        """A metadata value: scalars and strings are returned, arrays walked (None)."""
        if kind in _GGUF_SCALARS:
            return self.take(_GGUF_SCALARS[kind], f"metadata {name!r}")[0]
        if kind == _GGUF_STRING:
            return self.string(f"metadata {name!r}")
        if kind != _GGUF_ARRAY:
            raise _Broken(f"metadata {name!r} has value type {kind}, which is not a GGUF type")
        item, count = self.take("<IQ", f"metadata {name!r}")
        if item in _GGUF_SCALARS:
            self.fits(count, struct.calcsize(_GGUF_SCALARS[item]), f"items in metadata {name!r}")
            self.pos += count * struct.calcsize(_GGUF_SCALARS[item])
        elif item == _GGUF_STRING:
            self.fits(count, 8, f"strings in metadata {name!r}")
            for i in range(count):
                self.string(f"string {i} of metadata {name!r}")
        else:
            raise _Broken(f"metadata {name!r} is an array of type {item}, which transformers cannot read")
        return None

    def tensor(self, i: int) -> tuple[str, int, int]:
        """(name, offset into the data, size in bytes) of the next tensor in the table."""
        from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

        name = self.string(f"the name of tensor {i}")
        (n_dims,) = self.take("<I", f"tensor {name!r}")
        if not 1 <= n_dims <= 4:
            raise _Broken(f"tensor {name!r} has {n_dims} dimensions (GGUF tensors have 1 to 4)")
        dims = self.take(f"<{n_dims}Q", f"tensor {name!r}")
        kind, offset = self.take("<IQ", f"tensor {name!r}")
        try:
            block, size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
        except (ValueError, KeyError):
            raise _Broken(f"tensor {name!r} has type {kind}, which is not a GGML type") from None
        count = math.prod(dims)
        if count % block:
            raise _Broken(f"tensor {name!r} has {count} elements, not a whole number of blocks of {block}")
        return name, offset, count // block * size
