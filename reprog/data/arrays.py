"""The array data set format: one `.npz` with `x` uint8 (N, H, W, C) and `y` int64 (N,).

`load_arrays` is the only reader, so every data module (CIFAR-10 offline copies, a user's own
data) gets the same validation and the same one-line errors.
"""

from pathlib import Path

import numpy as np
import torch

from reprog.errors import UserError, brief

FORMAT = "np.savez(path, x=uint8 array (N, H, W, C), y=int64 array (N,))"


def load_arrays(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 (N, C, H, W) and labels as int64 (N,), from an array data set file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no array data set at {path}; write one with {FORMAT}")
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array, not an .npz archive of x and y")
        with f:
            if not {"x", "y"} <= set(f.files):
                raise UserError(f"{path} has arrays {sorted(f.files)}, but needs 'x' and 'y'; write it with {FORMAT}")
            x, y = f["x"], f["y"]
        for name, array in (("x", x), ("y", y)):
            if not isinstance(array, np.ndarray):  # numpy hands back a member without the .npy magic as bytes
                raise ValueError(f"{name} is not an .npy array")
    except UserError:
        raise
    except Exception as e:  # any parse failure (zip, zlib, npy header, CRC; MemoryError for absurd shapes): corrupt
        raise UserError(
            f"corrupt array data set {path} ({brief(e)}); re-create it with {FORMAT} or copy it again"
        ) from e
    if x.dtype != np.uint8 or x.ndim != 4:
        raise UserError(
            f"{path}: x is {x.dtype} with shape {x.shape}, expected uint8 (N, H, W, C); write it with {FORMAT}"
        )
    if x.shape[1] in (1, 3, 4) and x.shape[3] not in (1, 3, 4):
        raise UserError(
            f"{path}: x has shape {x.shape}, which looks channel-first (N, C, H, W), but the format is "
            f"(N, H, W, C); save it again with x.transpose(0, 2, 3, 1)"
        )
    if not np.issubdtype(y.dtype, np.integer) or y.shape != (len(x),):
        raise UserError(
            f"{path}: y is {y.dtype} with shape {y.shape}, expected integer labels of shape ({len(x)},); "
            f"write it with {FORMAT}"
        )
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y.astype(np.int64))
