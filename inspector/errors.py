"""The one error type the library raises for bad input; the CLI turns it into one line and exit code 2."""


class InspectError(ValueError):
    """Bad or unreadable input: a config, a checkpoint, a prompt, an option.

    The message is a single line that names the thing (file, field, tensor) and, where there
    are two values to compare, both of them.
    """
