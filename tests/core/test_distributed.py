"""The cohort batch on a dask.distributed cluster equals the serial run.

``run_batch(..., scheduler="tcp://HOST:PORT")`` sends one task per subject to a
dask.distributed scheduler. Here a ``LocalCluster`` with one worker process
(so every task and its arguments cross a process boundary, pickled, as on a
real cluster) runs a two-subject cohort; every map it writes must be identical
to the synchronous run's, and the statuses and progress calls must match.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed not installed (pip install .[cluster])"
)

from napari_mor.group.batch import BatchSettings, run_batch  # noqa: E402
from napari_mor.sample import write_bids_cohort  # noqa: E402


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist_cohort")
    write_bids_cohort(
        root, n_subjects=2, seed=11, pet_voxel_mm=6.0, mr_voxel_mm=6.0, noise_cv=0.03
    )
    return root


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=40,  # logging.ERROR
    ) as local:
        yield local


def _run(root, out, scheduler):
    seen = []
    results = run_batch(
        root,
        out,
        BatchSettings(fwhm_mm=0.0),
        labels=root / "atlas" / "space-MNI_labels.nii.gz",
        mask=root / "atlas" / "space-MNI_brainmask.nii.gz",
        scheduler=scheduler,
        on_progress=lambda done, total, status: seen.append((done, total)),
    )
    return results, seen


def _maps(out):
    import nibabel as nib

    return {
        path.relative_to(out).as_posix(): np.asarray(nib.load(str(path)).dataobj)
        for path in sorted(out.glob("sub-*/*.nii.gz"))
    }


def test_distributed_batch_equals_serial(cohort, cluster, tmp_path):
    serial, serial_seen = _run(cohort, tmp_path / "serial", "sync")
    remote, remote_seen = _run(
        cohort, tmp_path / "distributed", cluster.scheduler_address
    )
    assert cluster.scheduler_address.startswith("tcp://")
    assert [r["subject"] for r in remote] == ["sub-01", "sub-02"]
    assert [r["status"] for r in remote] == ["computed", "computed"]
    assert [r["status"] for r in serial] == ["computed", "computed"]
    assert sorted(remote_seen) == sorted(serial_seen) == [(1, 2), (2, 2)]
    expected, written = _maps(tmp_path / "serial"), _maps(tmp_path / "distributed")
    assert len(expected) >= 6  # BP_ND baseline/challenge + delta, per subject
    assert written.keys() == expected.keys()
    for name, data in expected.items():
        np.testing.assert_array_equal(written[name], data, err_msg=name)
    report = json.loads((tmp_path / "distributed" / "batch_report.json").read_text())
    assert [s["status"] for s in report["subjects"]] == ["computed", "computed"]


def test_distributed_rerun_uses_the_cache(cohort, cluster, tmp_path):
    out = tmp_path / "maps"
    _run(cohort, out, cluster.scheduler_address)
    again, _ = _run(cohort, out, cluster.scheduler_address)
    assert [r["status"] for r in again] == ["cached", "cached"]
