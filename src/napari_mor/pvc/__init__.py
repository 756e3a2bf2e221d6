"""Partial-volume correction (PVC) of dynamic PET: GTM, RBV and iterative Yang.

Core module, numpy/scipy only. Every function takes a :class:`DynamicPET` and a
:class:`LabelImage` on the PET grid and a Gaussian point-spread function given as
its full width at half maximum (mm, isotropic or per axis); voxel sizes come from
the affine.

- :func:`gtm_tacs`: geometric transfer matrix (Rousset et al. 1998) -> corrected
  regional TACs of every label, background (label 0) included as a region.
- :func:`rbv_image`: region-based voxelwise correction (Thomas et al. 2011).
- :func:`iterative_yang`: iterative Yang (Erlandsson et al. 2012).

See ``docs/pvc.md`` for the assumptions (PSF known, labels aligned and complete)
and the measured sensitivity to PSF and registration errors.
"""

from napari_mor.pvc.gtm import (
    PVC_METHODS,
    GtmResult,
    blur_psf,
    gtm_matrix,
    gtm_tacs,
    psf_fwhm_per_axis,
    psf_sigma_vox,
)
from napari_mor.pvc.voxelwise import iterative_yang, rbv_image

__all__ = [
    "PVC_METHODS",
    "GtmResult",
    "blur_psf",
    "gtm_matrix",
    "gtm_tacs",
    "iterative_yang",
    "psf_fwhm_per_axis",
    "psf_sigma_vox",
    "rbv_image",
]
