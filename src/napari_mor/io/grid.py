"""The one check that two images share a voxel grid (shape and affine)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["AFFINE_ATOL_MM", "same_grid"]

#: Largest difference between two affines' entries (mm) that still counts as one
#: grid: well below any voxel size, above float32 round-off of stored headers.
AFFINE_ATOL_MM = 1e-3


def same_grid(
    shape_a: Sequence[int],
    affine_a: np.ndarray,
    shape_b: Sequence[int],
    affine_b: np.ndarray,
) -> bool:
    """True when two 3-D grids have the same shape and the same affine.

    Parameters
    ----------
    shape_a, shape_b : sequence of int
        Spatial shapes (x, y, z); only the last three entries are compared, so a
        4-D PET shape ``(t, x, y, z)`` may be passed.
    affine_a, affine_b : ndarray, shape (4, 4)
        Voxel-to-world (mm) transforms.

    Returns
    -------
    bool
        Shapes equal and affines equal within :data:`AFFINE_ATOL_MM`.

    Examples
    --------
    >>> import numpy as np
    >>> same_grid((4, 4, 4), np.eye(4), (2, 4, 4, 4), np.eye(4) + 1e-6)
    True
    """
    if tuple(shape_a)[-3:] != tuple(shape_b)[-3:]:
        return False
    return bool(
        np.allclose(
            np.asarray(affine_a, dtype=np.float64),
            np.asarray(affine_b, dtype=np.float64),
            atol=AFFINE_ATOL_MM,
            rtol=0.0,
        )
    )
