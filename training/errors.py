"""The exceptions the CLI turns into one line: mistakes a user can fix, and a Ctrl-C that kept work."""


class QismError(Exception):
    """A problem with the user's input, options or files, with a message that says what to do."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C after part of the work was kept; the message says what was kept and how to go on."""
