"""Group study dock, section 3: summary, cluster table, ROI choice and scatter.

Clicking a table row moves the viewer to the cluster's peak and plots the
per-subject delta-BP in the cluster against the covariate; choosing a region
plots its per-subject mean. The numbers come from
:meth:`napari_mor.group.GroupResult.values_at`.
"""

from __future__ import annotations

import numpy as np
from napari.utils.notifications import show_error
from qtpy.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_mor._errors import MorError
from napari_mor._napari._dock import read_only_table
from napari_mor._napari.group._work import stats_summary
from napari_mor._napari.group.scatter_plot import GroupScatterPlotDock

#: Cluster-table columns shown: (key of ``GroupResult.clusters``, header).
TABLE_COLUMNS = (
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


class ResultsSection(QWidget):
    """What a group result shows in the dock (its layers are added elsewhere)."""

    def __init__(self, viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.result = None
        self.region_labels = None
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.table = read_only_table([header for _, header in TABLE_COLUMNS])
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.cellClicked.connect(lambda row, _col: self.select_cluster(row))
        self.roi_combo = QComboBox()
        self.roi_combo.activated.connect(lambda _index: self.select_roi())
        roi_row = QHBoxLayout()
        roi_row.addWidget(QLabel("ROI"))
        roi_row.addWidget(self.roi_combo)
        self.plot = GroupScatterPlotDock(viewer)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.table)
        layout.addLayout(roi_row)
        layout.addWidget(self.plot)

    def show_output(self, output) -> None:
        """Fill summary, table and region list from a ``GroupOutput``."""
        result = output.result
        self.result = result
        self.summary.setText(stats_summary(result.settings))
        self.region_labels = output.region_labels
        self.roi_combo.clear()
        if self.region_labels is not None:
            lut = self.region_labels.lut
            self.roi_combo.addItems([lut[k] for k in sorted(lut)])
        self.table.setRowCount(len(result.clusters))
        for r, row in enumerate(result.clusters):
            for c, (key, _) in enumerate(TABLE_COLUMNS):
                value = row[key]
                text = f"{value:.3g}" if isinstance(value, float) else str(value)
                self.table.setItem(r, c, QTableWidgetItem(text))

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
