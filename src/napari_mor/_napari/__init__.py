"""napari integration: readers, writers, sample data and dock widgets.

The only part of napari-mor that imports napari or Qt.
"""
