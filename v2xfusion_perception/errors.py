"""The error types that carry a clear, one-line message about bad input to the user."""


class V2XError(Exception):
    """Base of every error caused by input (a file, a field, a parameter, a message).

    The message names the input and what is wrong with it; command-line entry points print it on one
    line and exit non-zero instead of showing a traceback.
    """


class ConfigError(V2XError):
    """A configuration file is missing, malformed, or holds an unknown or mistyped key."""


class DatasetError(V2XError):
    """A data set file or folder is missing, truncated or malformed."""
