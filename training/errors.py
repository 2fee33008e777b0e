"""The one exception type for mistakes a user can fix; the CLI prints it as a single line."""


class QismError(Exception):
    """A problem with the user's input, options or files, with a message that says what to do."""
