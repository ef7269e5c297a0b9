"""One node parameter's description: name, default, a sentence for people, allowed values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Tuple, Union

ParamValue = Union[bool, int, float, str, List[str]]


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter: name, default, a sentence for people, and its allowed values."""

    name: str
    default: ParamValue
    description: str
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    choices: Tuple[str, ...] = ()
    read_only: bool = False  # changes need a restart of the node

    @property
    def kind(self) -> type:
        """Return the Python type of the value (bool, int, float, str or list)."""
        return type(self.default)


def spec(name: str, default: ParamValue, description: str, **kw: Any) -> ParamSpec:
    """Build a ParamSpec (the tables read shorter this way)."""
    return ParamSpec(name=name, default=default, description=description, **kw)
