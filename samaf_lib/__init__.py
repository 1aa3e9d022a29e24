"""samaf_lib: the shared library of the SAMAF study."""

import warnings as _warnings

__version__ = "0.1.0"

# librosa loads pooch on some calls, and pooch imports tqdm.auto, which warns in every notebook kernel that has no
# ipywidgets. The study draws no widget and no progress bar in a notebook (samaf_lib.progress), so the warning
# says nothing about it.
_warnings.filterwarnings("ignore", message="IProgress not found", module="tqdm")
