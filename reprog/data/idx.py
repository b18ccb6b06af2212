"""IDX headers (the format MNIST ships in), checked before torchvision reads a file.

torchvision trusts the header, so a truncated or mangled file fails deep in its reader with an assert
or a reshape error; the header and the file's size are enough to say what is wrong, without reading the data.
"""

import math
from pathlib import Path

from reprog.errors import brief


class IdxError(ValueError):
    """What is wrong with an IDX file, in a few words that fit inside a one-line message."""


def idx_shape(path: Path, ndim: int) -> tuple[int, ...]:
    """The dims of an IDX file of uint8 values with `ndim` dims; IdxError unless the file's size matches them."""
    header = 4 + 4 * ndim
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(header)
    except OSError as e:
        raise IdxError(f"cannot read it ({brief(e)})") from e
    if len(head) < header:
        raise IdxError(f"{size} bytes, shorter than the {header}-byte header of an IDX file with {ndim} dims")
    magic = bytes([0, 0, 8, ndim])  # two zero bytes, dtype code 8 (uint8), number of dims
    if head[:4] != magic:
        raise IdxError(f"its magic number is {head[:4].hex()}, not {magic.hex()} (IDX of uint8 with {ndim} dims)")
    dims = tuple(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if size != header + math.prod(dims):
        raise IdxError(
            f"{size} bytes, but its header ({' x '.join(map(str, dims))} values) needs {header + math.prod(dims)}"
        )
    return dims
