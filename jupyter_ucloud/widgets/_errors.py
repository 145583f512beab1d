"""How a widget words a failed call on its error line."""

from __future__ import annotations


def describe_error(exc: BaseException) -> str:
    """The message to show: the client's errors already name the call and carry UCloud's ``why``;
    a plain ``ValueError`` is the widget's own word on a missing choice."""
    text = str(exc).strip()
    if type(exc).__module__.startswith("jupyter_ucloud") or type(exc) is ValueError:
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
