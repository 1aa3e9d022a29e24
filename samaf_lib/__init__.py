"""samaf_lib: the shared library of the SAMAF study."""

__version__ = "0.1.0"
