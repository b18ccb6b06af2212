"""The one exception type for bad input: a wrong setting, a missing or corrupt file.

Entry points print its message as a single line (no traceback) and exit non-zero; the message always
says what to do next.
"""


class UserError(Exception):
    """Bad input from the user, with a message that says how to fix it."""
