"""The one exception type for bad input: a wrong setting, a missing or corrupt file.

Entry points print its message as a single line (no traceback) and exit non-zero; the message always
says what to do next.
"""


class UserError(Exception):
    """Bad input from the user, with a message that says how to fix it."""


def brief(error: BaseException, limit: int = 300) -> str:
    """`Type: message` on one line, for quoting a library's error inside a UserError."""
    text = " ".join(str(error).split())
    if text.startswith("Weights only load failed"):  # torch's page of advice would tell the user to trust the file
        text = "torch.load(weights_only=True) refused it: it holds objects other than tensors and plain values"
    if not text:
        return f"{type(error).__name__} (no message)"
    return f"{type(error).__name__}: {text[:limit]}{'…' if len(text) > limit else ''}"


class Diverged(UserError):
    """Training produced a non-finite loss, metric or parameter: the run stops, is recorded `diverged`, exports
    nothing."""
