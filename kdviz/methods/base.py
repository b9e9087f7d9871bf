"""``MethodSpec``: everything the UIs need to know about one method, in one object.

A method (knowledge distillation, a scratch student, FSP, pruning, k-means fine-tuning...) is
registered once, in its own module of this package, and looked up by name (``get_method``) or
recognised from a run's config (``method_of``). This is the only layer where a method's name
appears: the engine runs whatever a config names, the figures receive labels and colours as data,
and the pages and widgets ask a spec instead of comparing strings (docs/architecture.md).

A spec holds:

* ``name``, ``label`` (a legend entry, "KD student"), ``colour`` (from ``kdviz.palette``) and a
  one-line ``summary`` citing the paper;
* ``hook`` (the ``TrainingHook`` class it registers, if any) and ``loss`` (the base loss it
  registers or uses), with ``options()`` listing the hook's typed options;
* ``claims(config)`` and ``priority``: which runs it describes (the highest-priority spec that
  claims a config is that run's method), and ``run_label(config)`` for a legend;
* ``reader``: a typed snapshot reader (arrays stored under the hook's label in, a dataclass out),
  used through ``read_snapshot`` so no page or widget spells a snapshot key;
* ``page`` and ``widgets``: where the method shows itself (``app.py`` and ``kdviz.widgets`` list
  them from here);
* ``stage1``: how a feature-distillation method serves as stage 1 of the two-stage recipe
  (``stage1.Stage1Method``; None for the others).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..engine.hooks import HookOption, hook_options, labels_of_hook
from ..palette import ROLE_COLORS
from ..registry import Registry

if TYPE_CHECKING:
    from .stage1 import Stage1Method


@dataclass(frozen=True)
class PageSpec:
    """A Streamlit page of the lab: ``module`` is a file in ``kdviz/app/pages/`` (without ``.py``);
    pages are listed by ``order`` under their ``section`` (one of ``SECTIONS``) of the sidebar."""

    module: str
    title: str
    icon: str
    order: int
    default: bool = False
    section: str = "Distillation"


# The sidebar's sections, in order (sixteen pages in one list were cut to ten behind "View more").
SECTIONS = ("Distillation", "Compression", "Runs and papers")


def _no_config(config: Any) -> bool:
    return False


@dataclass(frozen=True)
class MethodSpec:
    """One method: identity, look, how to recognise and label its runs, and how to read them."""

    name: str
    label: str
    colour: str
    summary: str
    hook: type | None = None
    loss: str | None = None
    claims: Callable[[Any], bool] = _no_config
    priority: int = 0
    label_run: Callable[[Any], str] | None = None
    reader: Callable[[Mapping[str, Any], str], Any] | None = None
    pages: tuple[PageSpec, ...] = ()
    widgets: Mapping[str, str] = field(default_factory=dict)  # exported name -> module in kdviz.widgets
    stage1: Stage1Method | None = None  # set when the method can be stage 1 of the two-stage recipe

    def options(self) -> dict[str, HookOption]:
        """The hook's typed options (name, type, default); empty for a method without a hook."""
        return hook_options(self.hook) if self.hook is not None else {}

    def run_label(self, config: Any) -> str:
        """A short legend label for a run of this method ("KD T=4", "pruned to 90%")."""
        return self.label_run(config) if self.label_run is not None else self.label

    def hook_labels(self, config: Any) -> list[str]:
        """The labels under which this method's hook stored data in a run with ``config``."""
        return labels_of_hook(list(getattr(config, "hooks", []) or []), self.name) if self.hook is not None else []

    def hook_label(self, config: Any, which: int = 0) -> str:
        """The label of the ``which``-th use of this method's hook in a run with ``config`` ("prune",
        or "prune1" when the config names the hook twice); a ``ValueError`` when there is no such use."""
        labels = self.hook_labels(config)
        if not labels:
            raise ValueError(f"this run has no {self.name!r} hook in its config (hooks: "
                             f"{[h.get('name') for h in getattr(config, 'hooks', None) or []]})")
        if isinstance(which, bool) or not isinstance(which, int) or not 0 <= which < len(labels):
            raise ValueError(f"this run uses the {self.name!r} hook {len(labels)} time(s); asked for use {which!r} "
                             f"(0 to {len(labels) - 1})")
        return labels[which]

    def metric_key(self, config: Any, key: str, which: int = 0) -> str:
        """The record key under which the ``which``-th use of this method's hook logs metric ``key``
        (``"prune/sparsity"``; ``"prune1/sparsity"`` for the second of two uses)."""
        return f"{self.hook_label(config, which)}/{key}"

    def read_snapshot(self, arrays: Mapping[str, Any], config: Any, which: int = 0) -> Any:
        """The ``which``-th use of this method's hook in a snapshot, as the typed reader's dataclass.

        A ``ValueError`` says so when the run has no such hook or the snapshot lacks its arrays."""
        if self.reader is None:
            raise ValueError(f"method {self.name!r} stores no snapshot arrays of its own")
        return self.reader(arrays, self.hook_label(config, which))


METHOD_SPECS: Registry[MethodSpec] = Registry("method")


def register_method(spec: MethodSpec) -> MethodSpec:
    """Register ``spec`` under its name (a second spec of the same name is a ``ValueError``)."""
    return METHOD_SPECS.register(spec.name)(spec)


def get_method(name: str) -> MethodSpec:
    """The spec registered as ``name``; a ``ValueError`` lists the known methods otherwise."""
    return METHOD_SPECS.get(name)


def all_methods() -> list[MethodSpec]:
    """Every registered spec, in registration order."""
    return [spec for _, spec in METHOD_SPECS.items()]


GENERIC_STUDENT = MethodSpec("student", "student", ROLE_COLORS["student"], "a run no registered method claims")


def method_of(config: Any, is_teacher: bool = False) -> MethodSpec:
    """The method of a run from its ``TrainConfig``: the highest-priority spec that claims it
    (``is_teacher``: another run in the same set distils from this one). A run no spec claims is a
    generic "student", never silently another method's."""
    if is_teacher:
        return get_method("teacher")
    claiming = [spec for spec in all_methods() if spec.claims(config)]
    return max(claiming, key=lambda spec: spec.priority) if claiming else GENERIC_STUDENT


def uses_hook(name: str) -> Callable[[Any], bool]:
    """A ``claims`` rule: the run's config has a hook entry named ``name``."""
    return lambda config: any(h.get("name") == name for h in (getattr(config, "hooks", None) or []))


def uses_loss(name: str) -> Callable[[Any], bool]:
    """A ``claims`` rule: the run's base loss (``config.method``) is ``name``."""
    return lambda config: getattr(config, "method", None) == name


def role_hooks(config: Any) -> list[str]:
    """The hooks of a run that define a method (a regulariser such as max-norm does not)."""
    hooks = [h.get("name") for h in (getattr(config, "hooks", None) or [])]
    return [n for n in hooks if n in METHOD_SPECS and get_method(n).priority > 0]
