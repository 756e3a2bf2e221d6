"""The "Group study" dock: run the cohort batch and voxelwise group statistics.

A thin container over the sections in :mod:`napari_mor._napari.group`: the
cohort batch (:func:`napari_mor.group.batch.run_batch`, per-subject progress,
Cancel between subjects), the statistics (:func:`napari_mor.group.iter_group_stats`
in a worker started by :func:`~napari_mor._napari._workers.start_worker`: progress
per block of permutations, Cancel between blocks) and the results: the t map
thresholded at the cluster-forming threshold over a template (the cohort's
phantom T1 when simulated, else nilearn's MNI152), the cluster labels, a
cluster table (click a row: go to the peak) and a scatter plot of delta-BP vs
the covariate in the clicked cluster or a chosen region.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import QLabel, QWidget

import napari
from napari_mor._napari._dock import scrolling_sections
from napari_mor._napari.group import (
    BatchSection,
    GroupInputs,
    GroupOutput,
    GroupScatterPlotDock,
    ResultsSection,
    StatsSection,
    add_group_layers,
    prepare_stats,
)
from napari_mor._napari.group._work import (
    region_labels_for,
    template_for,
    template_name,
)

__all__ = ["GroupInputs", "GroupScatterPlotDock", "GroupWidget", "prepare_stats"]


class GroupWidget(QWidget):
    """Dock: cohort batch, group statistics (paired t / correlation), clusters."""

    def __init__(
        self, viewer: napari.viewer.Viewer, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.folder: Path | None = None
        intro = QLabel(
            "delta-BP = BP_baseline - BP_challenge; t > 0 = activation "
            "(reduced availability during the challenge)."
        )
        intro.setWordWrap(True)
        self.batch = BatchSection()
        self.stats = StatsSection(viewer)
        self.results = ResultsSection(viewer)
        scrolling_sections(self, [intro, self.batch, self.stats, self.results])
        self.batch.maps_ready.connect(self.stats.folder_edit.setText)
        self.stats.result_ready.connect(self._show_output)
        # the controls tests and scripts drive, under their historical names
        self.cohort_edit = self.batch.cohort_edit
        self.registration_combo = self.batch.registration_combo
        self.batch_button = self.batch.batch_button
        self.batch_status = self.batch.status
        self.batch_progress = self.batch.progress
        self.folder_edit = self.stats.folder_edit
        self.test_combo = self.stats.test_combo
        self.covariate_edit = self.stats.covariate_edit
        self.tail_combo = self.stats.tail_combo
        self.p_spin = self.stats.p_spin
        self.perm_spin = self.stats.perm_spin
        self.conn_combo = self.stats.conn_combo
        self.atlas_combo = self.stats.atlas_combo
        self.run_button = self.stats.run_button
        self.load_button = self.stats.load_button
        self.cancel_button = self.stats.cancel_button
        self.progress = self.stats.progress
        self.summary = self.results.summary
        self.table = self.results.table
        self.roi_combo = self.results.roi_combo
        self.plot = self.results.plot

    # --------------------------------------------------------- state
    @property
    def result(self):
        """The group result shown (a ``GroupResult``), or None."""
        return self.results.result

    @property
    def region_labels(self):
        """The cohort's region labels on the result grid, or None."""
        return self.results.region_labels

    @property
    def worker(self):
        """The running statistics worker, or None."""
        return self.stats.worker

    @property
    def batch_worker(self):
        """The running batch worker, or None."""
        return self.batch.worker

    # ------------------------------------------------------- actions
    def run_batch(self, cohort: str | Path | None = None):
        """Process a cohort in a worker; returns it (None on a bad folder)."""
        return self.batch.run_batch(cohort)

    def inputs(self) -> GroupInputs:
        """The statistics options as core inputs."""
        return self.stats.inputs()

    def run_stats(self):
        """Start the analysis in a worker; returns the worker (None on error)."""
        return self.stats.run_stats()

    def cancel(self) -> None:
        """Stop the running statistics between permutation blocks."""
        self.stats.cancel()

    def load_results(self) -> None:
        """Load a results folder written by ``napari-mor group stats``."""
        self.stats.load_results()

    def show_result(self, result, folder: str | Path | None = None) -> None:
        """Show a ``GroupResult`` (template, t maps, clusters, table)."""
        folder = Path(folder) if folder is not None else self.folder
        template, name = (None, "")
        if template_name(folder) not in self.viewer.layers:
            template, name = template_for(folder)
        labels = region_labels_for(folder, result)
        self._show_output(GroupOutput(result, folder, template, name, labels))

    def _show_output(self, output: GroupOutput) -> None:
        self.folder = output.folder
        add_group_layers(self.viewer, output)
        self.results.show_output(output)

    def select_cluster(self, row: int) -> None:
        """Go to the peak of a cluster and plot its delta-BP vs covariate."""
        self.results.select_cluster(row)

    def select_roi(self, name: str | None = None) -> None:
        """Plot the per-subject mean of the tested data in a region."""
        self.results.select_roi(name)
