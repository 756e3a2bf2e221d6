"""Sections of the Group study dock (``_group_widget.GroupWidget``).

- :mod:`.batch_section`: cohort batch (BIDS folder -> per-subject maps, dask).
- :mod:`.stats_section`: maps folder, test options, run / load statistics.
- :mod:`.results_section`: summary, cluster table, ROI choice, scatter plot.
- :mod:`.result_layers`: template, thresholded t maps and cluster labels.
- :mod:`.scatter_plot`: the scatter plot.
- :mod:`._work`: what the workers run (Qt-free).
"""

from napari_mor._napari.group._work import GroupInputs, GroupOutput, prepare_stats
from napari_mor._napari.group.batch_section import BatchSection
from napari_mor._napari.group.result_layers import add_group_layers
from napari_mor._napari.group.results_section import TABLE_COLUMNS, ResultsSection
from napari_mor._napari.group.scatter_plot import GroupScatterPlotDock
from napari_mor._napari.group.stats_section import StatsSection

__all__ = [
    "TABLE_COLUMNS",
    "BatchSection",
    "GroupInputs",
    "GroupOutput",
    "GroupScatterPlotDock",
    "ResultsSection",
    "StatsSection",
    "add_group_layers",
    "prepare_stats",
]
