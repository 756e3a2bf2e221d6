"""What the Group study dock runs in its workers: Qt-free, no layer touched.

The dock collects a :class:`GroupInputs`, :func:`prepare_stats` turns it into
the keyword arguments of :func:`napari_mor.group.iter_group_stats` (main
thread: quick, and its errors become a notification before anything starts),
and :func:`run_stats` runs the analysis and loads what the layers need (the
template, the region labels) in the worker, so the GUI thread only adds
layers. Texts shown by the dock (:func:`stats_summary`, :func:`batch_summary`)
are built here from the core's results.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_mor._errors import MorError

#: Template layer names: the cohort's phantom T1, or nilearn's MNI152.
PHANTOM_TEMPLATE = "phantom T1 (MNI-like)"
MNI_TEMPLATE = "MNI152 template"
_PHANTOM_T1 = Path("atlas") / "space-MNI_T1w.nii.gz"


@dataclass
class GroupInputs:
    """Options collected from the dock (core keyword arguments)."""

    folder: Path
    test: str = "paired"
    covariate: str = ""
    tail: str = "two-sided"
    p_voxel: float = 0.001
    n_perm: int = 1000
    connectivity: int = 26
    seed: int = 0
    atlas: str | None = "harvard_oxford"


@dataclass
class GroupOutput:
    """What the statistics worker returns: the result and what its layers need.

    ``template`` is None when the dock already shows it (or none is available);
    ``region_labels`` are the cohort's labels on the result grid, or None.
    """

    result: object
    folder: Path
    template: object | None = None
    template_name: str = ""
    region_labels: object | None = None


def prepare_stats(inputs: GroupInputs) -> dict:
    """Load a maps folder into keyword arguments of ``iter_group_stats``."""
    import nibabel as nib

    from napari_mor.group.batch import find_region_labels, load_cohort_maps

    maps = load_cohort_maps(inputs.folder)
    kwargs = {
        "maps": maps.delta,
        "affine": maps.affine,
        "test": inputs.test,
        "subjects": maps.subjects,
        "tail": inputs.tail,
        "p_voxel": inputs.p_voxel,
        "n_perm": inputs.n_perm,
        "connectivity": inputs.connectivity,
        "seed": inputs.seed,
        "atlas": inputs.atlas,
        "region_labels": find_region_labels(inputs.folder),
    }
    mask_path = inputs.folder / "atlas" / "space-MNI_brainmask.nii.gz"
    if mask_path.is_file():
        kwargs["mask"] = np.asarray(nib.load(str(mask_path)).dataobj) > 0
    if inputs.test == "paired":
        if maps.baseline is None or maps.challenge is None:
            raise MorError("The paired test needs baseline and challenge BP maps.")
        kwargs["maps"], kwargs["challenge_maps"] = maps.baseline, maps.challenge
    if inputs.test in ("pearson", "spearman"):
        if not inputs.covariate:
            raise MorError(
                f"The {inputs.test} correlation needs a covariate column of "
                "participants.tsv (e.g. resiliency)."
            )
        kwargs["covariate"] = maps.covariate(inputs.covariate)
        kwargs["covariate_name"] = inputs.covariate
    return kwargs


def run_stats(
    kwargs: dict, folder: Path, load_template: bool = True
) -> Generator[tuple[int, int], None, GroupOutput]:
    """The statistics worker: yields ``(done, total)`` permutations per block.

    Parameters
    ----------
    kwargs : dict
        From :func:`prepare_stats`.
    folder : Path
        The maps folder (template and region labels are looked up there).
    load_template : bool
        False when the dock already shows the template.
    """
    from napari_mor.group import iter_group_stats

    result = yield from iter_group_stats(**kwargs)
    template, name = template_for(folder) if load_template else (None, "")
    return GroupOutput(
        result, folder, template, name, region_labels_for(folder, result)
    )


def template_name(folder: Path | None) -> str:
    """Name of the template layer :func:`template_for` would load."""
    for base in _bases(folder):
        if (base / _PHANTOM_T1).is_file():
            return PHANTOM_TEMPLATE
    return MNI_TEMPLATE


def template_for(folder: Path | None):
    """The template to show under the maps: ``(Volume or None, layer name)``.

    The cohort's phantom T1 (``atlas/space-MNI_T1w.nii.gz`` in the folder or its
    parent) when present, else nilearn's 2 mm MNI152 (None when unavailable).
    """
    from napari_mor.io import load_volume

    for base in _bases(folder):
        if (base / _PHANTOM_T1).is_file():
            return load_volume(base / _PHANTOM_T1), PHANTOM_TEMPLATE
    try:
        from napari_mor.rois import load_mni_template

        return load_mni_template(2), MNI_TEMPLATE
    except MorError:
        return None, ""


def region_labels_for(folder: Path | None, result):
    """The cohort's region labels on the result grid (ROI scatter), or None."""
    from napari_mor.group.batch import find_region_labels
    from napari_mor.rois import labels_on_grid

    for base in _bases(folder):
        labels = find_region_labels(base)
        if labels is not None:
            return labels_on_grid(
                labels, result.mask.shape, result.affine, on_empty="drop"
            )
    return None


def _bases(folder: Path | None) -> list[Path]:
    return [] if folder is None else [Path(folder), Path(folder).parent]


def stats_summary(settings: dict) -> str:
    """One paragraph on the test, its threshold and its FWE levels."""
    s = settings
    thr = float(s["t_threshold"])
    text = (
        f"{s['test']} ({s['tail']}), n={s['n_subjects']}, df={s['df']}; "
        f"clusters at p<{s['p_voxel']} (|t|>={thr:.2f}, "
        f"{s['connectivity']}-connectivity)"
    )
    if s.get("voxel_fwe_t_05") is not None:
        text += (
            f"; FWE 5%: |t|>={s['voxel_fwe_t_05']:.2f}, cluster>="
            f"{s['cluster_fwe_size_05']} voxels ({s['n_perm']} perms)"
        )
    return text


def batch_summary(results: list[dict], out_dir: Path) -> str:
    """``Batch done: 2 computed, 1 failed; failed: sub-03 (why). Maps in ...``."""
    counts: dict[str, int] = {}
    for status in results:
        counts[status["status"]] = counts.get(status["status"], 0) + 1
    failed = [
        f"{r['subject']} ({r['message']})" for r in results if r["status"] == "failed"
    ]
    text = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    if failed:
        text += "; failed: " + "; ".join(failed)
    return f"Batch done: {text}. Maps in {out_dir}."


def batch_progress_text(done: int, total: int, status: dict) -> str:
    """``[2/8] sub-02: computed`` (with the message of a failed subject)."""
    extra = f" ({status['message']})" if status.get("message") else ""
    return f"[{done}/{total}] {status['subject']}: {status['status']}{extra}"
