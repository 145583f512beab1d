"""The base of every UCloud model, and how models go on and off the wire.

Wire names are camelCase (``alias_generator=to_camel``), Python names snake_case; both are accepted
on input (``populate_by_name``) and unknown fields are ignored (``extra="ignore"``), as UCloud's Go
decoder does.

Serialisation (``to_wire``) is ``model_dump(mode="json", by_alias=True, exclude_unset=True)``:

* A field is written when it was *set*: present in the parsed JSON (an explicit ``null``
  included) or passed to the constructor. What was parsed therefore comes back unchanged, and
  ``parse -> to_wire -> parse`` is the identity on every modelled field.
* Go's ``util.Option`` and struct fields without ``omitempty`` are always on the wire (``null``
  when absent). A model lists such fields in ``wire_always``; they count as set from construction,
  so a server that builds a model gets them without spelling them out (e.g. ``JobUpdate`` or the
  ``type`` discriminators). To emit an ``omitempty`` field, set it; to leave it out, do not.
* Go's ``omitempty`` bools (the support flags) are normalised on input: ``false`` is dropped, so
  a false flag is never written and a disabled backend serialises as ``{}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = ["UCloudModel", "to_wire"]


class UCloudModel(BaseModel):
    """A UCloud wire type: camelCase on the wire, snake_case in Python, unknown fields ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    #: Python names of fields that are written even when never set (Go fields without omitempty).
    wire_always: ClassVar[tuple[str, ...]] = ()

    def model_post_init(self, context: Any, /) -> None:
        if self.wire_always:
            self.__pydantic_fields_set__.update(self.wire_always)

    def to_wire(self) -> dict[str, Any]:
        """The JSON-compatible dict UCloud would send (see the module docstring)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


def to_wire(obj: Any) -> Any:
    """``to_wire`` for a model, or a list/dict/tuple holding models, or a plain JSON value."""
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if isinstance(obj, dict):
        return {key: to_wire(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_wire(value) for value in obj]
    return obj
