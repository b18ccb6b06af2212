"""The array data set format: one `.npz` with `x` uint8 (N, H, W, C) and `y` int64 (N,).

`load_arrays` is the only reader, so every data module (CIFAR-10 offline copies, a user's own
data) gets the same validation and the same one-line errors.
"""

import zipfile
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
        with np.load(path, allow_pickle=False) as f:
            if not {"x", "y"} <= set(f.files):
                raise UserError(f"{path} has arrays {sorted(f.files)}, but needs 'x' and 'y'; write it with {FORMAT}")
            x, y = f["x"], f["y"]
    except UserError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise UserError(f"corrupt array data set {path} ({brief(e)}); "
                        f"re-create it with {FORMAT} or copy it again") from e
    if x.dtype != np.uint8 or x.ndim != 4:
        raise UserError(f"{path}: x is {x.dtype} with shape {x.shape}, expected uint8 (N, H, W, C)")
    if not np.issubdtype(y.dtype, np.integer) or y.shape != (len(x),):
        raise UserError(f"{path}: y is {y.dtype} with shape {y.shape}, expected integer labels of shape ({len(x)},)")
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y.astype(np.int64))
