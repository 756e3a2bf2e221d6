"""Regions of interest: label images, TAC extraction. No napari import."""

from napari_mor.rois.tacs import TacTable, extract_tacs, read_tacs_tsv, write_tacs_tsv

__all__ = ["TacTable", "extract_tacs", "read_tacs_tsv", "write_tacs_tsv"]
