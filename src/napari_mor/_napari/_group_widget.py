"""The "Group study" dock: run or load voxelwise group statistics and explore them.

Thin Qt layer over :mod:`napari_mor.group`: it collects options, runs
:func:`napari_mor.group.iter_group_stats` in a ``thread_worker`` (progress bar,
Cancel), and adds the t map thresholded at the cluster-forming threshold over a
template (the cohort's phantom T1 when simulated, else nilearn's MNI152), the
cluster labels, a cluster table (click a row: go to the peak) and a scatter
plot of delta-BP vs the covariate in the clicked cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

import napari
from napari_mor._errors import MorError
from napari_mor._napari._dock import button_row
from napari_mor._napari._plot_base import BasePlotDock

_TABLE_COLUMNS = (
    ("cluster", "#"),
    ("sign", "sign"),
    ("size_voxels", "voxels"),
    ("size_ml", "mL"),
    ("peak_x_mm", "x"),
    ("peak_y_mm", "y"),
    ("peak_z_mm", "z"),
    ("peak_t", "t"),
    ("peak_z", "Z"),
    ("p_fwe_cluster", "p FWE clu"),
    ("region", "region"),
    ("atlas_label", "atlas"),
)


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


class GroupScatterPlotDock(BasePlotDock):
    """Delta-BP (cluster mean per subject) against the covariate or subject."""

    def __init__(self, viewer=None, parent=None) -> None:
        self.x: np.ndarray | None = None
        self.y: np.ndarray | None = None
        self.xlabel = ""
        self.title = ""
        super().__init__(viewer, parent)

    def set_data(self, x, y, xlabel: str, title: str) -> None:
        self.x, self.y = np.asarray(x, float), np.asarray(y, float)
        self.xlabel, self.title = xlabel, title
        self.refresh()

    def draw(self) -> None:
        ax = self.axes
        if self.x is None:
            ax.set_title("click a cluster", fontsize=9)
            return
        ax.scatter(self.x, self.y, color="#f58231", s=18)
        if self.x.size > 2 and np.ptp(self.x) > 0:
            slope, intercept = np.polyfit(self.x, self.y, 1)
            xs = np.array([self.x.min(), self.x.max()])
            ax.plot(xs, intercept + slope * xs, color=self.colors["foreground"], lw=1)
        ax.axhline(0, color=self.colors["highlight"], lw=0.8)
        ax.set_xlabel(self.xlabel)
        ax.set_ylabel("delta-BP_ND (base - chal)")
        ax.set_title(self.title, fontsize=9)


class _BatchProgress(QObject):
    """Carries per-subject batch progress from dask threads to the GUI thread."""

    advanced = Signal(int, int, str)


class GroupWidget(QWidget):
    """Dock: group statistics (paired t / correlation) with clusters and plots."""

    def __init__(
        self, viewer: napari.viewer.Viewer, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.result = None
        self.folder: Path | None = None
        self.worker = None
        self.batch_worker = None
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                "delta-BP = BP_baseline - BP_challenge; t > 0 = activation "
                "(reduced availability during the challenge)."
            )
        )
        layout.addWidget(self._build_batch_box())
        row = QHBoxLayout()
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("maps folder or results folder")
        browse = QPushButton("Browse")
        browse.clicked.connect(self._browse)
        row.addWidget(self.folder_edit)
        row.addWidget(browse)
        layout.addLayout(row)
        form = QFormLayout()
        self.test_combo = QComboBox()
        self.test_combo.addItems(["paired", "one-sample", "pearson", "spearman"])
        self.covariate_edit = QLineEdit("resiliency")
        self.tail_combo = QComboBox()
        self.tail_combo.addItems(["two-sided", "greater", "less"])
        self.p_spin = QDoubleSpinBox()
        self.p_spin.setDecimals(4)
        self.p_spin.setRange(0.0001, 0.05)
        self.p_spin.setSingleStep(0.0005)
        self.p_spin.setValue(0.001)
        self.perm_spin = QSpinBox()
        self.perm_spin.setRange(0, 100000)
        self.perm_spin.setValue(1000)
        self.conn_combo = QComboBox()
        self.conn_combo.addItems(["26", "18", "6"])
        self.atlas_combo = QComboBox()
        self.atlas_combo.addItems(
            ["harvard_oxford", "neuromorphometrics", "aal", "none"]
        )
        form.addRow("test", self.test_combo)
        form.addRow("covariate", self.covariate_edit)
        form.addRow("tail", self.tail_combo)
        form.addRow("cluster-forming p", self.p_spin)
        form.addRow("permutations", self.perm_spin)
        form.addRow("connectivity", self.conn_combo)
        form.addRow("peak atlas", self.atlas_combo)
        layout.addLayout(form)
        buttons, made = button_row(
            ("Run statistics", self.run_stats),
            ("Load results", self.load_results),
            ("Cancel", self.cancel),
        )
        self.run_button, self.load_button, self.cancel_button = made
        self.cancel_button.setEnabled(False)
        layout.addLayout(buttons)
        self.progress = QProgressBar()
        layout.addWidget(self.progress)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.table = QTableWidget(0, len(_TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels([h for _, h in _TABLE_COLUMNS])
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.cellClicked.connect(lambda r, _c: self.select_cluster(r))
        layout.addWidget(self.table)
        roi_row = QHBoxLayout()
        roi_row.addWidget(QLabel("ROI"))
        self.roi_combo = QComboBox()
        self.roi_combo.activated.connect(lambda _i: self.select_roi())
        roi_row.addWidget(self.roi_combo)
        layout.addLayout(roi_row)
        self.region_labels = None
        self.plot = GroupScatterPlotDock(viewer)
        layout.addWidget(self.plot)

    def _build_batch_box(self) -> QGroupBox:
        box = QGroupBox("Cohort batch (BIDS folder -> BP and delta-BP maps)")
        form = QFormLayout(box)
        self.cohort_edit = QLineEdit()
        self.cohort_edit.setPlaceholderText("cohort folder: sub-*/pet, sub-*/anat")
        self.registration_combo = QComboBox()
        self.registration_combo.addItems(["identity", "mni"])
        self.registration_combo.setToolTip(
            "identity: PET already in MNI space; mni: motion correction, PET->T1w "
            "and T1w->MNI152 per subject"
        )
        self.batch_button = QPushButton("Run batch")
        self.batch_button.clicked.connect(lambda: self.run_batch())
        self.batch_status = QLabel("")
        self.batch_status.setWordWrap(True)
        form.addRow("cohort", self.cohort_edit)
        form.addRow("registration", self.registration_combo)
        form.addRow(self.batch_button)
        form.addRow(self.batch_status)
        return box

    # ------------------------------------------------------------- batch
    def run_batch(self, cohort: str | Path | None = None):
        """Process a cohort in a worker (dask inside); returns the worker.

        Maps go to ``COHORT/derivatives/napari-mor``, which then becomes the
        folder for the statistics below. A failed subject is reported, not fatal.
        """
        from napari_mor.group.batch import (
            BatchSettings,
            cohort_atlas_inputs,
            discover_cohort,
            run_batch,
        )

        root = Path(cohort or self.cohort_edit.text().strip())
        try:
            listing = discover_cohort(root)
            labels, mask = cohort_atlas_inputs(root)
            settings = BatchSettings(registration=self.registration_combo.currentText())
        except (MorError, OSError) as err:
            show_error(str(err))
            return None
        out_dir = root / "derivatives" / "napari-mor"
        progress = _BatchProgress()
        progress.advanced.connect(self._batch_advanced)
        self.batch_status.setText(listing.report())
        self.progress.setRange(0, max(len(listing.subjects), 1))
        self.progress.setValue(0)

        def _report(done, total, status):
            progress.advanced.emit(
                done, total, f"{status['subject']}: {status['status']}"
            )

        @thread_worker(ignore_errors=True)
        def _work():
            return run_batch(
                root, out_dir, settings, labels=labels, mask=mask, on_progress=_report
            )

        worker = _work()
        worker.returned.connect(lambda results: self._batch_done(results, out_dir))
        worker.errored.connect(lambda err: show_error(str(err)))
        worker.finished.connect(lambda: self.batch_button.setEnabled(True))
        self.batch_button.setEnabled(False)
        self._batch_progress = progress  # kept alive while the worker runs
        self.batch_worker = worker
        worker.start()
        return worker

    def _batch_advanced(self, done: int, total: int, text: str) -> None:
        self.progress.setValue(done)
        self.batch_status.setText(f"[{done}/{total}] {text}")

    def _batch_done(self, results: list[dict], out_dir: Path) -> None:
        counts = {}
        for status in results:
            counts[status["status"]] = counts.get(status["status"], 0) + 1
        failed = [
            f"{r['subject']} ({r['message']})"
            for r in results
            if r["status"] == "failed"
        ]
        text = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
        if failed:
            text += "; failed: " + "; ".join(failed)
        self.batch_status.setText(f"Batch done: {text}. Maps in {out_dir}.")
        self.folder_edit.setText(str(out_dir))

    # ------------------------------------------------------------- inputs
    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Maps or results folder")
        if folder:
            self.folder_edit.setText(folder)

    def inputs(self) -> GroupInputs:
        text = self.folder_edit.text().strip()
        if not text:
            raise MorError("Choose a maps folder (from 'napari-mor group run').")
        atlas = self.atlas_combo.currentText()
        return GroupInputs(
            folder=Path(text),
            test=self.test_combo.currentText(),
            covariate=self.covariate_edit.text().strip(),
            tail=self.tail_combo.currentText(),
            p_voxel=float(self.p_spin.value()),
            n_perm=int(self.perm_spin.value()),
            connectivity=int(self.conn_combo.currentText()),
            atlas=None if atlas == "none" else atlas,
        )

    # ---------------------------------------------------------------- run
    def run_stats(self):
        """Start the analysis in a worker; returns the worker (None on error)."""
        from napari_mor.group import iter_group_stats

        try:
            inputs = self.inputs()
            kwargs = prepare_stats(inputs)
        except (MorError, OSError) as err:
            show_error(str(err))
            return None
        self.folder = inputs.folder
        total = max(inputs.n_perm, 1)
        self.progress.setRange(0, total)
        self.progress.setValue(0)

        @thread_worker(
            progress={"total": total, "desc": "Group permutations"}, ignore_errors=True
        )
        def _work():
            return (yield from iter_group_stats(**kwargs))

        worker = _work()
        worker.yielded.connect(lambda dt: self.progress.setValue(dt[0]))
        worker.returned.connect(self.show_result)
        worker.errored.connect(lambda err: show_error(str(err)))
        worker.finished.connect(self._finished)
        self.worker = worker
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        worker.start()
        return worker

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.quit()
            show_info("Group statistics cancelled.")

    def _finished(self) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.worker = None

    def load_results(self) -> None:
        """Load a results folder written by ``napari-mor group stats``."""
        from napari_mor.group import load_group_result

        try:
            folder = self.inputs().folder
            result = load_group_result(folder)
        except (MorError, OSError) as err:
            show_error(str(err))
            return
        self.folder = folder
        self.show_result(result)

    # --------------------------------------------------------------- show
    def _template(self):
        from napari_mor.io import load_volume

        for base in (self.folder, getattr(self.folder, "parent", None)):
            if base is None:
                continue
            path = base / "atlas" / "space-MNI_T1w.nii.gz"
            if path.is_file():
                return load_volume(path), "phantom T1 (MNI-like)"
        try:
            from napari_mor.rois import load_mni_template

            return load_mni_template(2), "MNI152 template"
        except MorError:
            return None, ""

    def show_result(self, result) -> None:
        """Add template, thresholded t map and clusters; fill the table."""
        self.result = result
        s = result.settings
        template, name = self._template()
        if template is not None and name not in self.viewer.layers:
            self.viewer.add_image(
                template.data, affine=template.affine, name=name, colormap="gray"
            )
        thr = float(s["t_threshold"])
        t = np.nan_to_num(result.maps["t"], nan=0.0)
        meta = {"kind": "group_t", "settings": s, "threshold": thr}
        for sign, cmap in ((1, "red"), (-1, "blue")):
            wrong_side = (s["tail"] == "greater" and sign < 0) or (
                s["tail"] == "less" and sign > 0
            )
            if wrong_side:
                continue
            shown = np.where(sign * t >= thr, sign * t, 0.0).astype(np.float32)
            top = max(float(shown.max()), thr + 1e-3)
            self.viewer.add_image(
                shown,
                affine=result.affine,
                name=f"t {'+' if sign > 0 else '-'} (p<{s['p_voxel']})",
                colormap=cmap,
                blending="additive",
                contrast_limits=(thr, top),
                metadata=meta,
            )
        self.viewer.add_labels(
            result.maps["clusters"].astype(np.int32),
            affine=result.affine,
            name="clusters",
            opacity=0.3,
            metadata=meta,
            visible=False,
        )
        self.summary.setText(
            f"{s['test']} ({s['tail']}), n={s['n_subjects']}, df={s['df']}; "
            f"clusters at p<{s['p_voxel']} (|t|>={thr:.2f}, "
            f"{s['connectivity']}-connectivity)"
            + (
                f"; FWE 5%: |t|>={s['voxel_fwe_t_05']:.2f}, cluster>="
                f"{s['cluster_fwe_size_05']} voxels ({s['n_perm']} perms)"
                if s.get("voxel_fwe_t_05") is not None
                else ""
            )
        )
        self._load_regions(result)
        self.table.setRowCount(len(result.clusters))
        for r, row in enumerate(result.clusters):
            for c, (key, _) in enumerate(_TABLE_COLUMNS):
                value = row[key]
                text = f"{value:.3g}" if isinstance(value, float) else str(value)
                self.table.setItem(r, c, QTableWidgetItem(text))

    def _load_regions(self, result) -> None:
        """Regions for the ROI scatter: the cohort's labels on the result grid."""
        from napari_mor.group.batch import find_region_labels
        from napari_mor.rois import labels_on_grid

        self.roi_combo.clear()
        self.region_labels = None
        labels = None
        for base in (self.folder, getattr(self.folder, "parent", None)):
            if base is not None and labels is None:
                labels = find_region_labels(base)
        if labels is None:
            return
        shape = result.mask.shape
        labels = labels_on_grid(labels, shape, result.affine, on_empty="drop")
        self.region_labels = labels
        self.roi_combo.addItems([labels.lut[k] for k in sorted(labels.lut)])

    def select_roi(self, name: str | None = None) -> None:
        """Plot the per-subject mean of the tested data in a region."""
        if self.result is None or self.region_labels is None:
            return
        name = name or self.roi_combo.currentText()
        try:
            mask = self.region_labels.data == self.region_labels.label_of(name)
            y = self.result.values_at(region_mask=mask)
        except MorError as err:
            show_error(str(err))
            return
        self._plot_values(y, f"ROI {name}")

    def _plot_values(self, y, title: str) -> None:
        cov = self.result.covariate
        xlabel = self.result.settings.get("covariate") or "subject"
        x = cov if cov is not None else np.arange(1, y.size + 1)
        self.plot.set_data(x, y, xlabel, title)

    def select_cluster(self, row: int) -> None:
        """Go to the peak of a cluster and plot its delta-BP vs covariate."""
        if self.result is None or not 0 <= row < len(self.result.clusters):
            return
        info = self.result.clusters[row]
        peak = np.array([info["peak_x_mm"], info["peak_y_mm"], info["peak_z_mm"]])
        ndim = self.viewer.dims.ndim
        self.viewer.dims.set_point(tuple(range(ndim - 3, ndim)), tuple(peak))
        scene = getattr(self.viewer, "scene", None)  # napari >= 0.9
        camera = scene.camera if scene is not None else self.viewer.camera
        camera.center = tuple(peak)
        try:
            y = self.result.values_at(cluster=int(info["cluster"]))
        except MorError as err:
            show_error(str(err))
            return
        label = info["region"] or info["atlas_label"] or ""
        self._plot_values(y, f"cluster {info['cluster']} {label}".strip())
