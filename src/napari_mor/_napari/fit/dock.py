"""The "Kinetic fit" dock: ROI fits at once, voxelwise BP_ND maps in a worker.

A thin widget composing small sections (layer pickers, the magicgui model and
condition forms, run controls, tables, plots, the equivalent command). It reads
the sections into a :class:`~napari_mor.workflows.fit.FitRequest`, runs the
workflow (:func:`~napari_mor.workflows.fit.fit_rois` in the GUI thread: a few
ms; maps through :func:`~napari_mor._napari._workers.start_worker` draining
:func:`~napari_mor.workflows.fit_maps.iter_fit_maps`) and shows tables, plots
and layers. No science here: the same request on the command line (shown in
the dock) gives the same numbers and sidecars.
"""

from __future__ import annotations

import functools
from pathlib import Path

from napari.layers import Image
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QFileDialog, QWidget

import napari
from napari_mor._errors import MorError
from napari_mor._napari import _metadata as md
from napari_mor._napari._dock import (
    notify_errors,
    on_layer_list_change,
    scrolling_sections,
)
from napari_mor._napari._workers import start_worker
from napari_mor._napari.fit.cli_box import CommandWidget, fit_command_text
from napari_mor._napari.fit.design_box import DesignCheckWidget
from napari_mor._napari.fit.inputs_form import (
    MODEL_CHOICES,
    ModelFormWidget,
    WindowsFormWidget,
)
from napari_mor._napari.fit.layers_box import (
    MASK_ROIS,
    MASK_UPTAKE,
    LayerPickerWidget,
)
from napari_mor._napari.fit.live_box import LiveFitWidget
from napari_mor._napari.fit.maps import (
    add_map_layers,
    drain_map_fits,
    save_map_layers,
)
from napari_mor._napari.fit.plots import FitPlotTabsWidget
from napari_mor._napari.fit.request import collect_request, fit_data_from_layers
from napari_mor._napari.fit.results import (
    RELEASE_ROI_COLUMNS,
    ROI_COLUMNS,
    RoiTablesWidget,
)
from napari_mor._napari.fit.run_box import RunControlsWidget
from napari_mor._napari.fit.setters import FitSettersMixin
from napari_mor.defaults import RELEASE_MODEL
from napari_mor.io.tables import write_rows_tsv
from napari_mor.kinetics import MapResult, RoiFit
from napari_mor.workflows.delta import DELTA_COLUMNS, delta_rows_from_fits
from napari_mor.workflows.fit import (
    FitData,
    FitRequest,
    RoiFitResult,
    RoiTacs,
    fit_rois,
    fit_table_rows,
    roi_tacs,
    table_columns,
)
from napari_mor.workflows.fit_maps import MapPlan, plan_maps

__all__ = ["MASK_ROIS", "MASK_UPTAKE", "MODEL_CHOICES", "FitWidget"]


class FitWidget(FitSettersMixin, QWidget):
    """Dock widget: reference-region fits of ROIs and voxelwise BP_ND maps.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer (injected by napari when opened from the Plugins menu).

    Signals
    -------
    roi_fit_done(bool)
        The ROI tables were refilled; True for a live (automatic) re-fit.
    """

    roi_fit_done = Signal(bool)

    def __init__(self, viewer: napari.viewer.Viewer, parent=None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        #: The request of the last ROI fit (None before one).
        self.inputs: FitRequest | None = None
        self.roi_result: RoiFitResult | None = None
        self.fits: dict[str, list[RoiFit]] = {}
        self.tacs: dict[str, RoiTacs] = {}
        self.roi_labels: list[int] = []
        self.map_results: dict[str, MapResult] = {}
        self.map_layers: dict[str, Image] = {}
        self.worker = None
        #: The last design check (``workflows.design_check.DesignCheck``).
        self.design_check = None
        #: Voxels per block of the voxelwise fit (None: the core's default).
        self.block_size: int | None = None

        self.layers_box = LayerPickerWidget(viewer)
        self.model_box = ModelFormWidget()
        self.windows_box = WindowsFormWidget()
        self.live_box = LiveFitWidget(
            self.model_box.widgets["t_star_min"].native,
            self.model_box.widgets["t_star_auto"].native,
            self.windows_box.spins,
            lambda: self.set_window_mode("custom"),
        )
        #: Live (automatic) ROI re-fits done so far.
        self.n_live_refits = 0
        self._live_warnings: set[str] = set()
        self.run_box = RunControlsWidget(self.fit_rois, self.fit_maps, self.cancel)
        self.results_box = RoiTablesWidget(
            self._save_table_dialog, self._save_maps_dialog
        )
        self.plot_tabs = FitPlotTabsWidget(viewer)
        self.design_box = DesignCheckWidget(self.check_design)
        self.cli = CommandWidget(max_height=110)
        sections = (
            self.layers_box,
            self.model_box,
            self.windows_box,
            self.live_box,
            self.run_box,
            self.results_box,
            self.plot_tabs,
            self.design_box,
            self.cli,
        )
        scrolling_sections(self, sections).addStretch(1)
        self._alias_section_widgets()

        self.layers_box.changed.connect(self._update_cli)
        self.layers_box.pet_changed.connect(self._adopt_study_windows)
        self.model_box.form.changed.connect(self._on_model_changed)
        self.windows_box.form.changed.connect(self._on_conditions_changed)
        self.results_box.roi_selected.connect(self.select_roi)
        for changed in (
            self.model_box.form.changed,
            self.windows_box.form.changed,
            self.layers_box.ref_combo.currentIndexChanged,
        ):
            changed.connect(self.live_box.schedule)
        self.layers_box.labels_combo.currentIndexChanged.connect(self._watch_labels)
        self.live_box.triggered.connect(self._on_live_timer)
        self.plot_tabs.logan_plot.t_star_picked.connect(self._on_t_star_dropped)
        self._scan_roles: tuple = ()
        on_layer_list_change(viewer, self._on_layers_changed)
        self._on_layers_changed()
        self._on_conditions_changed()

    def _on_layers_changed(self, event=None) -> None:
        """Refill the pickers; follow a newly opened baseline/challenge pair."""
        before = self.layers_box.pet_combo.currentText()
        self.layers_box.refresh()
        roles = tuple(
            (layer.name, layer.metadata[md.SCAN])
            for layer in self.viewer.layers
            if layer.metadata.get(md.SCAN)
        )
        pet_changed = self.layers_box.pet_combo.currentText() != before
        if pet_changed or roles != self._scan_roles:
            self._scan_roles = roles
            self._adopt_study_windows()
        self._watch_labels()
        self._fit_slider_range()

    def _watch_labels(self, *args) -> None:
        """Live re-fit after paint strokes in the chosen ROI set."""
        layer = self.layers_box.layer(self.layers_box.labels_combo.currentText())
        if self.live_box.watch_labels(layer):  # another ROI set: re-fit on it
            self.live_box.schedule()

    def _fit_slider_range(self) -> None:
        """The sliders span the chosen PET's frames (0 to the last frame's end)."""
        layer = self.layers_box.layer(self.layers_box.pet_combo.currentText())
        meta = {} if layer is None else layer.metadata
        if md.FRAME_START_S in meta and md.FRAME_DURATION_S in meta:
            end_s = float(meta[md.FRAME_START_S][-1]) + float(
                meta[md.FRAME_DURATION_S][-1]
            )
            self.live_box.set_max_minutes(end_s / 60.0)

    def _alias_section_widgets(self) -> None:
        """The sections' Qt widgets as attributes (tests and scripts use them)."""
        layers, model, windows, run = (
            self.layers_box,
            self.model_box,
            self.windows_box,
            self.run_box,
        )
        self.pet_combo = layers.pet_combo
        self.challenge_pet_combo = layers.challenge_pet_combo
        self.labels_combo = layers.labels_combo
        self.ref_combo = layers.ref_combo
        self.mask_combo = layers.mask_combo
        #: The magicgui forms (``Container``; widgets named as the dataclass fields).
        self.model_form, self.windows_form = model.form, windows.form
        self.model_combo = model.widgets["model"].native
        self.weights_combo = model.widgets["weights"].native
        self.t_star_auto = model.widgets["t_star_auto"].native
        self.t_star_spin = model.widgets["t_star_min"].native
        self.k2p_auto = model.widgets["k2p_auto"].native
        self.k2p_spin = model.widgets["k2p_per_min"].native
        self.window_mode_combo = windows.widgets["mode"].native
        self.window_spins = windows.spins
        self.fit_rois_button = run.fit_rois_button
        self.fit_maps_button = run.fit_maps_button
        self.cancel_button = run.cancel_button
        self.progress, self.status_label = run.progress, run.status_label
        self.table = self.results_box.table
        self.delta_table = self.results_box.delta_table
        self.curve_plot = self.plot_tabs.curve_plot
        self.residual_plot = self.plot_tabs.residual_plot
        self.logan_plot = self.plot_tabs.logan_plot
        self.cli_box = self.cli.text_edit

    def _on_conditions_changed(self, *args) -> None:
        release = self.model_box.is_release
        self.challenge_pet_combo.setEnabled(
            self.windows_box.mode == "two_scans" and not release
        )
        self.live_box.t_star_slider.setEnabled(not release)
        self.live_box.set_windows_enabled(
            not release and self.windows_box.mode in ("preset", "custom")
        )
        self._update_cli()

    def _on_model_changed(self, *args) -> None:
        """lp-ntPET fits one scan whole: the windows section does not apply."""
        self.windows_box.setEnabled(not self.model_box.is_release)
        self._on_conditions_changed()

    # ------------------------------------------------------------- inputs
    def collect_inputs(self, rois_only: bool = False) -> FitRequest:
        """Read the sections into a :class:`FitRequest` (raises MorError).

        ``rois_only``: the request of Fit ROIs (else the one of Fit maps).
        """
        return collect_request(
            self.layers_box,
            self.model_box.values(),
            self.windows_box.values(),
            rois_only=rois_only,
        )

    def fit_data(self, request: FitRequest) -> FitData:
        """The request's inputs from the chosen layers (checked, on the PET grid)."""
        return fit_data_from_layers(self.layers_box, request)

    def _update_cli(self, *args) -> None:
        try:
            request = self.collect_inputs(rois_only=True)
        except MorError as err:
            self.cli.set_text(f"# incomplete inputs: {err}")
            return
        try:
            maps = self.collect_inputs()
        except MorError as err:  # e.g. GTM corrects ROI TACs only
            maps = f"# no maps: {err}"
        fitted = self.roi_result is not None and self.inputs == request
        self.cli.set_text(
            fit_command_text(request, maps, self.roi_result.k2p if fitted else None)
        )

    def cli_text(self) -> str:
        """The equivalent command lines shown in the dock."""
        return self.cli.text()

    # ------------------------------------------------------------ ROI fits
    @notify_errors
    def fit_rois(self) -> dict[str, list[RoiFit]]:
        """Fit every ROI in every condition now; fill the tables and plots."""
        self.live_box.timer.stop()  # this fit supersedes a pending live one
        return self._run_roi_fit(live=False)

    def live_refit(self) -> dict[str, list[RoiFit]] | None:
        """Re-fit the ROIs keeping the plotted row (what the live timer runs).

        Incomplete inputs while the user is still editing go to the status line,
        not to a notification; a model warning is shown once, not on every step.
        """
        try:
            return self._run_roi_fit(live=True)
        except MorError as err:
            self.status_label.setText(f"Live re-fit waiting: {err}")
            return None

    def _on_t_star_dropped(self, minutes: float) -> None:
        """A t* line dragged on the Logan plot: t* there (0.5 min steps)."""
        self.set_t_star(round(minutes * 2.0) / 2.0)

    def _on_live_timer(self) -> None:
        if self.live_box.live_check.isChecked() and self.inputs is not None:
            self.live_refit()

    def _run_roi_fit(self, live: bool) -> dict[str, list[RoiFit]]:
        self.layers_box.sync_reference_choices()
        request = self.collect_inputs(rois_only=True)
        result = fit_rois(request, self.fit_data(request))
        selected = self.table.selectionModel().selectedRows()
        row = selected[0].row() if live and selected else 0
        self.inputs, self.roi_result = request, result
        self.fits, self.tacs = result.fits, result.tacs
        self.roi_labels = result.labels
        columns = RELEASE_ROI_COLUMNS if request.model == RELEASE_MODEL else ROI_COLUMNS
        self.results_box.show_fits(
            self.table_rows(), self.roi_labels, self.fits, columns
        )
        self.results_box.show_deltas(self.delta_rows())
        if self.table.rowCount():
            row = min(row, self.table.rowCount() - 1)
            self.table.blockSignals(True)
            self.table.selectRow(row)
            self.table.blockSignals(False)
            self.select_roi(self.results_box.roi_of_row(row))  # plots follow the fit
        prefix = "live re-fit, " if live else ""
        self.status_label.setText(
            f"{prefix}{request.model}: {len(self.roi_labels)} ROIs × "
            f"{len(result.fits)} condition(s) fitted; reference {result.reference}."
        )
        shown = self._live_warnings if live else set()
        for text in result.warnings:  # a violated model assumption is never silent
            if text not in shown:
                show_warning(text)
        self._live_warnings = set(result.warnings)
        if live:
            self.n_live_refits += 1
        self._update_cli()
        self.roi_fit_done.emit(live)
        return result.fits

    def table_rows(self) -> list[dict]:
        """The ROI fit table as rows (columns :data:`FIT_COLUMNS`)."""
        return fit_table_rows(self.roi_result) if self.roi_result else []

    def delta_rows(self) -> list[dict]:
        """Per-ROI delta-BP from the ROI fits (empty without two conditions or
        the release model's before/after)."""
        if self.roi_result is None or not (
            {"baseline", "challenge"} <= set(self.fits)
            or self.roi_result.model == RELEASE_MODEL
        ):
            return []
        first = next(iter(self.tacs.values()))
        return delta_rows_from_fits(self.fits, self.roi_labels, first.n_voxels)

    def select_roi(self, roi_index: int) -> None:
        """Plot the fits of the ``roi_index``-th ROI (order of the table)."""
        self.plot_tabs.show_roi(self.fits, self.tacs, roi_index)

    @notify_errors
    def save_table(self, path: str | Path) -> Path:
        """Write the ROI fit table (and the ROI delta table beside it) as TSV."""
        if not self.fits:
            raise MorError("Nothing to save: fit the ROIs first.")
        columns = table_columns(self.roi_result.model)
        path = write_rows_tsv(self.table_rows(), columns, path)
        deltas = self.delta_rows()
        if deltas:
            write_rows_tsv(
                deltas, DELTA_COLUMNS, path.with_name(path.stem + "_delta.tsv")
            )
        return path

    # ---------------------------------------------------------------- maps
    @notify_errors
    def fit_maps(self):
        """Start the voxelwise fit in a worker; returns the worker (or None)."""
        if self.worker is not None:
            raise MorError("A voxelwise fit is already running; wait or cancel it.")
        self.layers_box.sync_reference_choices()
        request = self.collect_inputs()
        plan = plan_maps(request, self.fit_data(request))
        for text in plan.warnings:
            show_warning(text)
        self.status_label.setText(
            f"Voxelwise {request.model}: {plan.n_voxels} voxels × {len(plan.jobs)} "
            f"condition(s); k2' {plan.k2p.source}…"
        )
        self.worker = start_worker(
            drain_map_fits,
            plan,
            self.block_size,
            desc=f"fitting {request.model} maps",
            on_returned=functools.partial(self._on_maps_returned, plan),
            fraction_of=lambda progress: progress.fraction,
            progress_bar=self.progress,
            cancel_button=self.cancel_button,
            run_button=self.fit_maps_button,
            on_aborted=self._on_aborted,
            on_finished=self._on_worker_finished,
            total=len(plan.jobs),
        )
        return self.worker

    def _on_maps_returned(self, plan: MapPlan, results: dict[str, MapResult]) -> None:
        added = add_map_layers(self.viewer, plan, results)
        self.map_results.update(results)
        self.map_layers.update(added)
        failed = sum(r.n_failed for r in results.values())
        self.status_label.setText(
            f"Added {', '.join(layer.name for layer in added.values())} ({failed} "
            "failed voxels). Open the Delta-BP dock for the change map."
        )

    # -------------------------------------------------------- design check
    @notify_errors
    def check_design(self):
        """Run the design check on the chosen layers in a worker; returns it."""
        from napari_mor.workflows.design_check import iter_check_design

        if self.worker is not None:
            raise MorError("A fit is already running; wait or cancel it.")
        self.layers_box.sync_reference_choices()
        request = self.collect_inputs(rois_only=True)
        tacs = roi_tacs(self.fit_data(request))
        box = self.design_box
        box.status_label.setText(f"Simulating {box.n_sim_spin.value()} scans…")
        self.worker = start_worker(
            iter_check_design,
            request,
            tacs,
            planted_pct=box.planted_spin.value(),
            n_sim=box.n_sim_spin.value(),
            desc="checking the design",
            on_returned=self._on_design_checked,
            fraction_of=lambda progress: progress[0] / max(progress[1], 1),
            progress_bar=self.progress,
            cancel_button=self.cancel_button,
            run_button=box.button,
            on_aborted=lambda: box.status_label.setText("Design check cancelled."),
            on_finished=self._on_worker_finished,
            total=box.n_sim_spin.value(),
        )
        return self.worker

    def _on_design_checked(self, result) -> None:
        self.design_check = result
        self.design_box.show_rows(result.rows)
        design = result.rows[0]["design"] if result.rows else ""
        self.design_box.status_label.setText(
            f"{result.request.model} ({design}), onset {result.onset_min:g} min: "
            + ("no-change readings within ±2 %." if not result.warnings else "")
        )
        for text in result.warnings:
            show_warning(text)

    def _on_aborted(self) -> None:
        self.status_label.setText("Voxelwise fit cancelled; no layers added.")

    def _on_worker_finished(self) -> None:
        self.worker = None

    def cancel(self) -> None:
        """Stop the running voxelwise fit between blocks (no layer is added)."""
        if self.worker is not None:
            self.worker.quit()

    @notify_errors
    def save_maps(self, out_dir: str | Path, stem: str = "bp_nd") -> list[Path]:
        """Write each BP_ND map as ``OUT_DIR/STEM_<condition>.nii.gz`` + JSON."""
        if not self.map_layers:
            raise MorError("No maps to save: run 'Fit maps' first.")
        written = save_map_layers(self.viewer, self.map_layers, out_dir, stem)
        show_info(f"Saved {len(written)} map(s) to {out_dir}.")
        return written

    # ------------------------------------------------------------- dialogs
    def _save_table_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save ROI fit table", "roi_fits.tsv", "TSV (*.tsv)"
        )
        if path:
            self.save_table(path)

    def _save_maps_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for the BP_ND maps")
        if path:
            self.save_maps(path)
