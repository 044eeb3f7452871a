"""Registry entries for a model family: one pipeline plus its component models.

Every zoo module registers a pipeline and the parts it is made of with the same family,
reference and (where an option has a fixed set of values) choices; `family_specs` writes
those shared fields once, so each entry reads as just name, builder, defaults and summary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ...ir import OpGraph
from ...registry import ModelSpec

# (name, builder, default options, one-line summary)
Entry = tuple[str, Callable[..., OpGraph], Mapping[str, Any], str]


def family_specs(
    family: str,
    reference: str,
    pipeline: Entry,
    components: Sequence[Entry],
    choices: Mapping[str, tuple[Any, ...]] | None = None,
) -> tuple[ModelSpec, ...]:
    """`ModelSpec`s for `pipeline` and its `components` (registered with `component=True`).

    `choices` restricts an option's values; it applies to every entry that has that option.
    """

    def spec(entry: Entry, component: bool) -> ModelSpec:
        name, fn, options, summary = entry
        allowed = {k: v for k, v in (choices or {}).items() if k in options}
        return ModelSpec(
            name, fn, MappingProxyType(dict(options)), summary, family, reference, component=component, choices=allowed
        )

    return (spec(pipeline, False), *(spec(entry, True) for entry in components))
