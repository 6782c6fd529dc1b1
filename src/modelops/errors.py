"""User-facing errors: what is wrong, where, and how to fix it.

The CLI prints these without a traceback and exits non-zero; anything else is a bug and keeps its
traceback.
"""


class ModelopsError(Exception):
    """An expected failure caused by input the user controls (params, data, state)."""


class ParamsError(ModelopsError):
    """`params.yaml` is missing, unreadable or invalid."""


class DataError(ModelopsError):
    """The input data cannot be loaded or does not match the declared schema."""
