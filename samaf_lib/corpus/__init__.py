"""The study's corpus (docs/study.md, Data): the generated ``synthvox`` corpus, a VoxCeleb1 subset, a folder of
your own recordings, one metadata schema and the train/val/test/unseen splits."""

from .splits import (COLUMNS, SPLITS, assign_splits, check_fractions, empty_metadata, read_metadata,
                     resolve_paths, split_counts, validate_metadata, write_metadata)
from .synthvox import NATIONALITY_VOICES, Voice, build_synthvox, design_speakers
from .folder import load_folder
from .voxceleb import load_voxceleb1, read_vox1_meta

__all__ = [
    "COLUMNS", "SPLITS", "NATIONALITY_VOICES", "Voice", "assign_splits", "build_synthvox", "check_fractions",
    "design_speakers", "empty_metadata", "load_folder", "load_voxceleb1", "read_metadata", "read_vox1_meta",
    "resolve_paths",
    "split_counts", "validate_metadata", "write_metadata",
]
