"""Layer pairs of a feature-distillation loss, as a config gives them: ``"auto"`` or a list of two names.

FSP (Yim et al. 2017) pairs a section's input and output features of the same model; attention
transfer (Zagoruyko & Komodakis 2017) pairs a student feature with a teacher feature. Both accept
``"auto"`` (their own rule for the default pairs) or an explicit list, checked here the same way so
that a typo names the pair, the model and the features it has.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence


def resolve_named_pairs(
    pairs: str | Sequence[Sequence[str]],
    what: str,
    names: str,
    auto: Callable[[], list[tuple[str, str]]],
    owners: Callable[[Sequence[str]], Sequence[tuple[str, str, Sequence[str]]]],
    none_found: str,
) -> list[tuple[str, str]]:
    """``"auto"`` -> ``auto()`` (a ``ValueError`` with ``none_found`` when it finds nothing); a list of
    pairs -> each checked: two names, each present in the features ``owners(pair)`` lists as
    ``(who, name, features)``. ``what`` names the loss ("FSP"), ``names`` the pair's form ("[in_name, out_name]")."""
    if isinstance(pairs, str):
        if pairs != "auto":
            raise ValueError(f"{what} pairs must be 'auto' or a list of {names}, got {pairs!r}")
        found = auto()
        if not found:
            raise ValueError(none_found)
        return found
    out = []
    for pair in pairs:
        if isinstance(pair, str) or len(pair) != 2:
            raise ValueError(f"each {what} pair must be {names}, got {pair!r}")
        for who, name, features in owners(pair):
            if name not in features:
                raise ValueError(f"{what} pair {list(pair)}: the {who} has no feature {name!r} (it has {list(features)})")
        out.append((str(pair[0]), str(pair[1])))
    if not out:
        raise ValueError(f"{what} pairs must not be empty")
    return out
