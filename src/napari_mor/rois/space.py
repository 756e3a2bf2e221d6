"""Bring ROIs defined in MNI space into a subject's native (PET) world.

Registration gives a chain of world-to-world transforms (MNI -> MR from
normalization, MR -> PET from coregistration). These helpers find the chain
between two named spaces and re-express MNI label images and sphere centres in
the target world, so the usual grid resampling then places them on the PET grid.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io.volume import LabelImage
from napari_mor.registration.transforms import Transform, compose

#: Names the MNI template space goes by in transforms.
MNI_SPACES = ("MNI152", "MNI")


def transform_chain(
    transforms: Iterable[Transform], source: str, target: str
) -> Transform | None:
    """Compose known transforms (or their inverses) from ``source`` to ``target``.

    Parameters
    ----------
    transforms : iterable of Transform
        Each maps its ``fixed_space`` world to its ``moving_space`` world.
    source, target : str
        Space names, e.g. ``"MNI152"`` and ``"PET"``.

    Returns
    -------
    Transform or None
        ``source -> target`` (shortest chain), or None when none connects them.
    """
    edges: dict[str, list[Transform]] = {}
    for transform in transforms:
        for step in (transform, transform.inverse()):
            edges.setdefault(step.fixed_space, []).append(step)
    frontier = [(source, None)]
    seen = {source}
    while frontier:
        space, chain = frontier.pop(0)
        if space == target:
            return chain if chain is not None else Transform.identity(source, target)
        for step in edges.get(space, []):
            if step.moving_space not in seen:
                seen.add(step.moving_space)
                frontier.append(
                    (step.moving_space, step if chain is None else compose(chain, step))
                )
    return None


def mni_to_space(transforms: Iterable[Transform], target: str) -> Transform | None:
    """The MNI -> ``target`` transform from a set of transforms, if any."""
    transforms = list(transforms)
    for mni in MNI_SPACES:
        chain = transform_chain(transforms, mni, target)
        if chain is not None:
            return chain
    return None


def labels_into_world(labels: LabelImage, source_to_target: Transform) -> LabelImage:
    """The same label voxels, with their affine re-expressed in the target world.

    Parameters
    ----------
    labels : LabelImage
        Labels whose affine maps voxels to the source world (e.g. MNI mm).
    source_to_target : Transform
        Maps source-world points to target-world points.

    Returns
    -------
    LabelImage
        A new object (data shared, never modified) whose affine maps voxels to
        the target world; resample it onto the PET grid as usual.
    """
    return replace(labels, affine=source_to_target.matrix @ labels.affine)


def points_into_world(points_mm, source_to_target: Transform) -> np.ndarray:
    """Map points (e.g. sphere centres in MNI mm) into the target world, mm."""
    points = np.asarray(points_mm, dtype=np.float64)
    if points.shape[-1] != 3:
        raise MorError(f"Points must have 3 coordinates (x, y, z); got {points.shape}.")
    return source_to_target.apply(points)
