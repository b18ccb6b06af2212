"""`Registry`: the one way every plug-in (program, label map, attack, oracle, estimator, model, adversarial-training
recipe, transform) is found: by the `kind` its config or saved file names.

Why a registry and not Hydra's `_target_`: program files are shared and untrusted, and a file names its kind, so
loading one must map a kind to a known class rather than import a `_target_` path it names.

A member is registered in its own file (`@PROGRAMS.register("masked")`), which its package imports with all the
others (`import_members`), so adding one is adding its file and its config entry. Its settings are its constructor's
parameters: `build` refuses an unknown or missing one from that signature, so they are declared once. The member
checks their values itself, in `__init__`.
"""

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar, cast

from reprog.errors import UserError

T = TypeVar("T")
M = TypeVar("M", bound=Callable[..., Any])
SETTING_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class Registry(Mapping[str, Callable[..., T]], Generic[T]):
    """Members by kind. `key` is how messages name the config key that picks one (`program.kind`, `model.arch`)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self._members: dict[str, Callable[..., T]] = {}

    def register(self, kind: str) -> Callable[[M], M]:
        """Decorator: file a class (or a function that builds one) under `kind`; a class learns its `kind`."""

        def add(member: M) -> M:
            if kind in self._members:
                raise ValueError(f"{self.key}={kind} is registered twice: {self._members[kind]} and {member}")
            if isinstance(member, type):
                cast(Any, member).kind = kind  # every class may carry its kind, whatever its type says
            self._members[kind] = member
            return member

        return add

    def build(self, kind: str, *context: Any, **settings: Any) -> T:
        """The member `kind` built from `context` (what the caller supplies: a model, a placement, sizes) and
        `settings` (what a config or file supplies), all named in its signature."""
        member = self.find(kind)
        check_settings(f"{self.key}={kind}", settings_of(member, len(context)), settings)
        return member(*context, **settings)

    def find(self, kind: str) -> Callable[..., T]:
        if kind not in self._members:
            raise UserError(f"unknown {self.key} {kind!r}; choose one of {', '.join(sorted(self._members))}")
        return self._members[kind]

    def __getitem__(self, kind: str) -> Callable[..., T]:
        return self._members[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)


def settings_of(member: Callable[..., Any], skip: int = 0) -> dict[str, inspect.Parameter] | None:
    """The settings a member takes after its first `skip` (context) parameters; a constructor that passes
    `**settings` on to its base class takes the base's too. None: any setting (an open `**kwargs`)."""
    signatures = [inspect.signature(member)]
    if isinstance(member, type):
        inits = [c.__dict__["__init__"] for c in member.__mro__ if "__init__" in c.__dict__ and c is not object]
        signatures = [inspect.signature(f) for f in inits]
        skip += 1  # self
    found: dict[str, inspect.Parameter] = {}
    for signature in signatures:
        params = list(signature.parameters.values())[skip:]
        found.update({p.name: p for p in params if p.kind in SETTING_KINDS and p.name not in found})
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            return found
    return None if signatures else found  # no signature: a class without an __init__ of its own takes nothing


def check_settings(owner: str, accepted: dict[str, inspect.Parameter] | None, settings: dict[str, Any]) -> None:
    """One line for the first settings a member does not take, or the required ones missing."""
    if accepted is None:
        return
    if unknown := sorted(set(settings) - set(accepted)):
        takes = ", ".join(accepted) or "none"
        raise UserError(f"{owner} has no setting {', '.join(unknown)}; its settings are {takes}")
    if missing := [n for n, p in accepted.items() if p.default is p.empty and n not in settings]:
        raise UserError(f"{owner} needs the setting{'s' * (len(missing) > 1)} {', '.join(missing)}")


def import_members(package: str) -> None:
    """Import every module of `package` (its own files, never a name from a config or file), so that each member
    registers itself; a package's `__init__` calls it last."""
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        importlib.import_module(f"{package}.{module.name}")
