"""Non-linear MR -> MNI refinement: displacement-field conventions and recovery of a
known smooth deformation of the phantom T1 (the undeformed T1 is the template)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mor import MorError
from napari_mor.io import Volume
from napari_mor.registration import (
    DisplacementField,
    Transform,
    brain_points_mm,
    field_from_sitk,
    load_displacement_field,
    refine_to_mni,
    save_displacement_field,
)
from napari_mor.registration._sitk import matrix_to_sitk_affine
from napari_mor.sample import make_sample_study

SHIFT = np.array([1.5, -2.0, 0.75])
CENTER = np.array([0.0, -18.0, 10.0])


@pytest.fixture(scope="module")
def mr() -> Volume:
    """Noise-free phantom T1 on a tilted 4 mm grid (44 x 53 x 45)."""
    return make_sample_study(noise_cv=0.0, pet_voxel_mm=6.0, mr_voxel_mm=4.0).mr


def grid_points(shape, affine) -> np.ndarray:
    index = np.indices(shape, dtype=float).reshape(3, -1).T
    return index @ affine[:3, :3].T + affine[:3, 3]


def analytic(points: np.ndarray) -> np.ndarray:
    """Constant shift plus a small smooth sinusoid (mm)."""
    q = (points - CENTER) / 60.0
    wave = np.stack(
        [
            np.sin(np.pi * q[:, 1]),
            0.5 * np.cos(np.pi * q[:, 2]),
            np.sin(np.pi * q[:, 0]),
        ],
        axis=1,
    )
    return SHIFT + wave


def smooth_warp(points: np.ndarray) -> np.ndarray:
    """A 2.5-3 mm smooth deformation (mm) over the head."""
    q = (points - CENTER) / 60.0
    return np.stack(
        [
            3.0 * np.sin(np.pi * q[:, 1]),
            3.0 * np.sin(np.pi * q[:, 2]),
            2.5 * np.cos(np.pi * q[:, 0]),
        ],
        axis=1,
    )


def test_field_apply_and_resample_match_analytic_mapping(tmp_path):
    # Field on a 2 mm axis-aligned grid covering the head.
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-90.0, -126.0, -72.0]
    shape = (91, 109, 91)
    nodes = grid_points(shape, affine)
    field = DisplacementField(
        analytic(nodes).reshape(*shape, 3), affine, "MNI152", "MR"
    )
    assert field.displacement_mm.dtype == np.float32
    # Exact at the grid nodes, trilinear (error ~ h^2/8 |d''| < 0.01 mm) between.
    sub = nodes[::997]
    np.testing.assert_allclose(field.apply(sub), sub + analytic(sub), atol=1e-4)
    rng = np.random.default_rng(0)
    points = rng.uniform([-60, -90, -40], [60, 60, 60], size=(500, 3))
    np.testing.assert_allclose(
        field.apply(points), points + analytic(points), atol=0.01
    )
    assert field.apply(points[0]).shape == (3,)
    # Outside the grid: the displacement of the nearest edge voxel.
    far = np.array([[500.0, 0.0, 0.0]])
    edge = np.array([[90.0, 0.0, 0.0]])  # last grid node along x
    np.testing.assert_allclose(
        field.apply(far) - far, field.apply(edge) - edge, atol=1e-5
    )

    # Resampling: image linear in its world coordinates (so trilinear
    # interpolation is exact), in a PET-like world reached from MR by `then`.
    then = Transform(
        np.array(
            [
                [0.98, -0.17, 0.0, 4.0],
                [0.17, 0.98, 0.0, -6.0],
                [0, 0, 1, 2],
                [0, 0, 0, 1],
            ]
        ),
        "MR",
        "PET",
    )
    img_affine = np.diag([3.0, 3.0, 3.0, 1.0])
    img_affine[:3, 3] = [-120.0, -160.0, -100.0]
    img_shape = (80, 100, 80)
    coef = np.array([0.3, -0.2, 0.5])
    image = (grid_points(img_shape, img_affine) @ coef + 100.0).reshape(img_shape)
    ref_affine = np.diag([4.0, 4.0, 4.0, 1.0])
    ref_affine[:3, 3] = [-60.0, -90.0, -40.0]
    ref_shape = (30, 37, 25)
    out = field.resample_through(
        image, img_affine, ref_shape, ref_affine, then=then, order=1
    )
    x = grid_points(ref_shape, ref_affine)
    expected = then.apply(x + analytic(x)) @ coef + 100.0
    np.testing.assert_allclose(out.ravel(), expected, atol=0.02)
    # 4D (time first): one volume per frame, same result per frame.
    stack = field.resample_through(
        np.stack([image, 2 * image]), img_affine, ref_shape, ref_affine, then=then
    )
    assert stack.shape == (2, *ref_shape)
    np.testing.assert_allclose(stack[1], 2 * out, rtol=1e-5)

    # Save / load round trip (NIfTI + JSON with the spaces).
    path = save_displacement_field(field, tmp_path / "warp.nii.gz")
    back = load_displacement_field(path)
    assert (back.fixed_space, back.moving_space) == ("MNI152", "MR")
    np.testing.assert_allclose(back.affine, affine)
    np.testing.assert_array_equal(back.displacement_mm, field.displacement_mm)


def test_field_from_sitk_keeps_ras_convention(mr):
    """An affine SimpleITK transform sampled on the (tilted) grid equals Transform."""
    matrix = np.array(
        [
            [1.05, 0.08, 0.0, 6.0],
            [-0.05, 0.95, 0.1, -4.0],
            [0.0, -0.1, 1.1, 3.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    truth = Transform(matrix, "MNI152", "MR")
    field = field_from_sitk(matrix_to_sitk_affine(matrix), mr, "MNI152", "MR")
    points = brain_points_mm(mr.data, mr.affine, max_points=2000)
    np.testing.assert_allclose(field.apply(points), truth.apply(points), atol=1e-3)
    same = DisplacementField.from_transform(truth, mr.data.shape, mr.affine)
    np.testing.assert_allclose(same.displacement_mm, field.displacement_mm, atol=1e-3)


def test_refine_recovers_known_smooth_deformation(mr):
    shape, affine = mr.data.shape, mr.affine
    nodes = grid_points(shape, affine)
    # Deformed T1: M(y) = T(y + w(y)); the true template -> M mapping is the
    # inverse y = f(x) with f(x) + w(f(x)) = x (fixed-point iteration).
    deform = DisplacementField(
        smooth_warp(nodes).reshape(*shape, 3), affine, "MR", "MNI152"
    )
    moving = Volume(deform.resample_through(mr.data, affine, shape, affine), affine)
    brain = brain_points_mm(mr.data, affine)
    truth = brain.copy()
    for _ in range(30):
        truth = brain - (deform.apply(truth) - truth)
    assert np.abs(deform.apply(truth) - brain).max() < 1e-6

    field = refine_to_mni(
        moving,
        Transform.identity("MNI152", "MR"),
        template=mr,
        mesh_size=(6, 6, 6),
        iterations=30,
        shrink=1,
    )
    affine_error = np.linalg.norm(brain - truth, axis=1).mean()
    warp_error = np.linalg.norm(field.apply(brain) - truth, axis=1).mean()
    print(f"mean error: affine only {affine_error:.2f} mm, refined {warp_error:.2f} mm")
    assert affine_error > 2.5
    assert warp_error < 1.5
    assert warp_error < 0.5 * affine_error
    assert field.displacement_mm.shape == (*shape, 3)
    assert (field.fixed_space, field.moving_space) == ("MNI152", "MR")
    assert field.metadata["mesh_size"] == [6, 6, 6]


def test_bad_input_raises_mor_error(mr):
    affine = np.eye(4)
    with pytest.raises(MorError, match=r"\(x, y, z, 3\)"):
        DisplacementField(np.zeros((4, 4, 4, 2)), affine)
    with pytest.raises(MorError, match=r"\(x, y, z, 3\)"):
        DisplacementField(np.zeros((4, 4, 4)), affine)
    bad = np.zeros((4, 4, 4, 3))
    bad[1, 2, 3, 0] = np.nan
    bad[0, 0, 0, 2] = np.inf
    with pytest.raises(MorError, match=r"2 voxel.*non-finite"):
        DisplacementField(bad, affine)
    with pytest.raises(MorError, match="affine"):
        DisplacementField(np.zeros((4, 4, 4, 3)), np.zeros((4, 4)))
    field = DisplacementField(np.zeros((4, 4, 4, 3)), affine, "MNI152", "MR")
    with pytest.raises(MorError, match=r"\(n, 3\)"):
        field.apply(np.zeros((5, 2)))
    with pytest.raises(MorError, match="3D"):
        field.resample_through(np.zeros((4, 4)), affine, (4, 4, 4), affine)
    with pytest.raises(MorError, match="do not meet"):
        field.resample_through(
            np.zeros((4, 4, 4)),
            affine,
            (4, 4, 4),
            affine,
            then=Transform.identity("PET", "MR"),
        )
    with pytest.raises(MorError, match="Transform"):
        refine_to_mni(mr, np.eye(4), template=mr)
    with pytest.raises(MorError, match="mesh_size"):
        refine_to_mni(mr, Transform.identity(), template=mr, mesh_size=(6, 6))
    with pytest.raises(MorError, match="max_displacement_mm"):
        refine_to_mni(mr, Transform.identity(), template=mr, max_displacement_mm=0)
    with pytest.raises(MorError, match="mr_mask"):
        refine_to_mni(mr, Transform.identity(), template=mr, mr_mask=np.ones((3, 3)))
