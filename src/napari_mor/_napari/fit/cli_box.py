"""The "Equivalent command" section: the ``napari-mor`` commands a dock's inputs
stand for (the Kinetic fit and the Delta-BP docks both show one).

:func:`fit_command_text` composes the Kinetic fit dock's lines from the
request's own :meth:`~napari_mor.workflows.fit.FitRequest.command_line`.
"""

from __future__ import annotations

from dataclasses import replace

from qtpy.QtWidgets import QGroupBox, QPlainTextEdit, QVBoxLayout

from napari_mor.workflows.delta import DeltaRequest
from napari_mor.workflows.fit import FitRequest, K2pChoice
from napari_mor.workflows.fit_maps import model_has_maps

MAPS_MARKER = "# BP_ND maps (OUT_<condition>.nii.gz with two conditions):"


def fit_command_text(
    request: FitRequest,
    maps: FitRequest | str | None = None,
    k2p_used: K2pChoice | None = None,
) -> str:
    """The commands giving a fit request's ROI table, maps and delta-BP.

    Parameters
    ----------
    request : FitRequest
        The ROI fits' request.
    maps : FitRequest or str, optional
        The maps' request (default: ``request`` for maps), or a comment saying
        why there are none.
    k2p_used : K2pChoice, optional
        The k2' the dock's last fit of this same request used (mentioned so
        the command can fix it with ``--k2p``).
    """
    lines = ["# ROI table (one row per ROI and condition):"]
    lines.append(replace(request, rois_only=True, mask=None).command_line())
    if maps is None:
        maps = replace(request, rois_only=False)
    if isinstance(maps, str):
        lines.append(maps)
    elif model_has_maps(maps.model):
        lines.append(MAPS_MARKER)
        lines.append(maps.command_line())
    if len(request.conditions) == 2:
        lines.append("# delta-BP (positive = activation):")
        lines.append(
            DeltaRequest(
                "OUT_baseline.nii.gz",
                "OUT_challenge.nii.gz",
                "DELTA.nii.gz",
                "PCT_DELTA.nii.gz",
            ).command_line()
        )
    if k2p_used is not None and k2p_used.value is not None:
        lines.append(
            f"# k2' used: {k2p_used.value:g} /min ({k2p_used.source}); the commands "
            f"estimate it the same way, or fix it with --k2p {k2p_used.value:g}"
        )
    return "\n".join(lines)


class CommandWidget(QGroupBox):
    """Dock section: read-only text of the equivalent command lines."""

    def __init__(self, max_height: int = 110, parent=None) -> None:
        super().__init__("Equivalent command", parent)
        self.text_edit = QPlainTextEdit()
        self.text_edit.setReadOnly(True)
        self.text_edit.setMaximumHeight(max_height)
        self.text_edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        QVBoxLayout(self).addWidget(self.text_edit)

    def set_text(self, text: str) -> None:
        """Show ``text``."""
        self.text_edit.setPlainText(text)

    def text(self) -> str:
        """The text shown."""
        return self.text_edit.toPlainText()
