"""User-facing errors: one line that names the file and the problem."""


class InputError(ValueError):
    """Bad input from the user (file, data or option); the CLI prints it as one line."""
