"""MR -> MNI normalisation: affine (12-parameter) registration of a T1 onto the
MNI152 template shipped offline by nilearn.

Only affine: no non-linear warp is estimated (a cheap B-spline stage was not
validated, see docs/registration.md). The template is skull-stripped, so a
brain mask of the MR (``mr_mask``) makes the fit markedly better on real data.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence

import numpy as np

from napari_mor._errors import MorError
from napari_mor.io.volume import Volume
from napari_mor.registration.coreg import (
    RegistrationResult,
    iter_register,
    run_to_end,
)

#: Pyramids of the rigid and affine stages: (shrink of the template, smoothing mm).
NORMALIZE_LEVELS = ((4, 8.0), (2, 4.0))
NORMALIZE_AFFINE_LEVELS = ((4, 6.0), (2, 3.0))

#: Plausible range of the template->MR voxel volume ratio (det of the affine).
SANE_DETERMINANT = (0.5, 2.0)


def mni_template(resolution_mm: int = 2) -> Volume:
    """The MNI152 T1 template shipped with nilearn (offline), as a Volume."""
    from napari_mor.rois.atlases import load_mni_template

    return load_mni_template(resolution_mm)


def iter_normalize_to_mni(
    mr: Volume,
    *,
    template: Volume | None = None,
    mr_mask: np.ndarray | None = None,
    template_space: str = "MNI152",
    initialize: str = "moments",
    levels: Sequence[tuple[int, float]] = NORMALIZE_LEVELS,
    affine_levels: Sequence[tuple[int, float]] = NORMALIZE_AFFINE_LEVELS,
    iterations: int = 200,
    sampling_fraction: float = 0.2,
    seed: int = 0,
    should_stop: Callable[[], bool] | None = None,
) -> Generator[tuple[int, int], None, RegistrationResult]:
    """Affine MR -> template registration (generator; see :func:`iter_register`).

    Parameters
    ----------
    mr : Volume
        T1-weighted MR (moving image).
    template : Volume, optional
        Fixed image; default the nilearn MNI152 2 mm template.
    mr_mask : ndarray of bool, shape mr.data.shape, optional
        Brain mask of the MR; restricts the metric (recommended with the
        skull-stripped MNI template).
    template_space : str
        Name of the fixed space stored in the transform.
    initialize : {"moments", "geometry", "header"}
        Centre-of-mass alignment by default (MR headers are not in MNI space).

    Returns
    -------
    RegistrationResult
        ``transform``: template world -> MR world (affine); use it to pull MR-grid
        images into template space, its inverse to bring MNI atlas labels to MR.
    """
    if template is None:
        template = mni_template(2)
    result = yield from iter_register(
        template,
        mr,
        kind="affine",
        initialize=initialize,
        levels=levels,
        affine_levels=affine_levels,
        iterations=iterations,
        sampling_fraction=sampling_fraction,
        moving_mask=mr_mask,
        fixed_space=template_space,
        moving_space="MR",
        seed=seed,
        should_stop=should_stop,
        what="MR-to-MNI normalisation",
    )
    _check_sane(result)
    return result


def normalize_to_mni(mr: Volume, **kwargs) -> RegistrationResult:
    """Affine MR -> MNI normalisation (parameters of :func:`iter_normalize_to_mni`)."""
    return run_to_end(iter_normalize_to_mni(mr, **kwargs))


def _check_sane(result: RegistrationResult) -> None:
    det = float(np.linalg.det(result.transform.matrix[:3, :3]))
    low, high = SANE_DETERMINANT
    if not low <= det <= high:
        raise MorError(
            f"MR-to-MNI normalisation gave an implausible scaling (volume ratio "
            f"{det:.2f}, expected {low:g}-{high:g}); check that the MR is a T1 of a "
            "head, pass a brain mask (--mask) or try --init geometry."
        )
