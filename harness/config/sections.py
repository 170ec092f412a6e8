"""Reading YAML config files into checked values, with errors that name file and key.

Shared by the target loader (`harness.config.target_files`) and the manifest loader
(`harness.config.manifest`). Two pieces:

- `load_yaml_mapping(path)`: the file's top-level mapping, or a `ConfigError` for an
  unreadable file, a YAML syntax error (with its line), a duplicate key, an empty file or
  a top level that is not a mapping.
- `Section`: one mapping at a dotted key, checked for unknown / missing keys, with typed
  getters. An explicit ``null`` counts as "not given", so ``user:`` with no value means
  the default.

`freeze` turns parsed YAML into immutable values (mappings -> `MappingProxyType`, lists
-> tuples) and `thaw` turns them back into plain JSON-ready dicts and lists.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import yaml

from harness.config.units import parse_bytes, parse_duration, parse_fraction, parse_power
from harness.errors import ConfigError

T = TypeVar("T")

MISSING: Any = object()
"""Default for getters meaning "this key is required"."""

EMPTY: Mapping[str, Any] = MappingProxyType({})


def empty_mapping() -> Mapping[str, Any]:
    """Default factory for frozen mapping fields of dataclasses."""
    return EMPTY


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""


class _DuplicateKeyError(yaml.constructor.ConstructorError):
    pass


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # unhashable key such as a list; reported by the caller's checks
            continue
        if duplicate:
            raise _DuplicateKeyError(
                "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark
            )
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Parse a YAML file whose top level must be a non-empty mapping."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, None, "file not found: check the path") from None
    except UnicodeDecodeError:
        raise ConfigError(source, None, "file is not UTF-8 text: save it as UTF-8") from None
    except OSError as error:
        raise ConfigError(source, None,
                          f"cannot read file ({error.strerror}): check the path and permissions") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKeyError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else "?"
        raise ConfigError(source, None, f"line {line}: {error.problem}: a key may appear only once; keep one") from None
    except yaml.MarkedYAMLError as error:
        raise ConfigError(source, None, _describe_yaml_error(error)) from None
    except yaml.YAMLError as error:
        raise ConfigError(source, None, f"not valid YAML ({error}): fix the syntax") from None
    if data is None:
        raise ConfigError(source, None, "file is empty: it must be a YAML mapping of keys to values")
    if not isinstance(data, dict):
        raise ConfigError(
            source, None, f"top level is {describe(data)}, not a mapping: write 'key: value' lines at the top level"
        )
    return data


def _describe_yaml_error(error: yaml.MarkedYAMLError) -> str:
    mark = error.problem_mark or error.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = " ".join(str(error.problem or error.context or "syntax error").split())
    context = ""
    if error.problem and error.context and error.context_mark is not None:
        context = f" ({' '.join(error.context.split())} started at line {error.context_mark.line + 1})"
    return f"YAML syntax error{where}: {problem}{context}; fix the syntax there"


def describe(value: object) -> str:
    """Name a parsed YAML value's type for an error message ("a string ('x')")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"a {type(value).__name__}"


def join_key(parent: str, child: str | int) -> str:
    """Dotted key of ``child`` under ``parent``; list indexes use brackets (``a.b[2]``)."""
    if isinstance(child, int):
        return f"{parent}[{child}]"
    return f"{parent}.{child}" if parent else child


def _allowed_text(allowed: Iterable[str]) -> str:
    return ", ".join(allowed)


def check_choice(value: object, choices: Iterable[str], source: str, key: str) -> str:
    """``value`` must be one of ``choices``; the error lists them."""
    options = tuple(choices)
    if not isinstance(value, str):
        raise ConfigError(source, key, f"expected one of {_allowed_text(options)}, got {describe(value)}")
    if value not in options:
        raise ConfigError(source, key, f"unknown value {value!r}; allowed: {_allowed_text(options)}")
    return value


def check_name(value: object, pattern: re.Pattern[str], source: str, key: str, what: str, hint: str) -> str:
    """``value`` must be a string matching ``pattern`` (names of targets, models, tags...).

    ``hint`` says what is allowed, e.g. "use lower-case letters, digits, '.', '_' and '-'".
    """
    if not isinstance(value, str):
        raise ConfigError(source, key, f"expected a {what} (string), got {describe(value)}")
    if not pattern.fullmatch(value):
        raise ConfigError(source, key, f"invalid {what} {value!r}: {hint}")
    return value


def freeze(value: Any, source: str, key: str) -> Any:
    """Make parsed YAML immutable and check it is JSON-representable (it goes into jobs).

    Mappings become `MappingProxyType` (string keys only), lists become tuples; dates and
    other non-JSON scalars are rejected with a hint to quote them.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(source, key, f"{value} is not a finite number: use a finite number")
        return value
    if isinstance(value, (list, tuple)):
        return tuple(freeze(item, source, join_key(key, index)) for index, item in enumerate(value))
    if isinstance(value, Mapping):
        frozen: dict[str, Any] = {}
        for name, item in value.items():
            if not isinstance(name, str):
                raise ConfigError(source, key, f"key {name!r} is not a string: quote it")
            frozen[name] = freeze(item, source, join_key(key, name))
        return MappingProxyType(frozen)
    raise ConfigError(source, key, f"{describe(value)} is not a plain value: quote it to make it a string")


def thaw(value: Any) -> Any:
    """Inverse of `freeze`: plain dicts and lists, ready for `json.dumps`."""
    if isinstance(value, Mapping):
        return {name: thaw(item) for name, item in value.items()}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    return value


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def check_plain_path(value: str, source: str, key: str) -> str:
    """A path must be non-empty and free of NUL and line breaks (it may reach a device)."""
    if not value.strip():
        raise ConfigError(source, key, "path is empty: give a path")
    if "\x00" in value or "\n" in value or "\r" in value:
        raise ConfigError(source, key, "path contains a NUL or line break: give a plain path")
    return value


def expand_env(value: str, source: str, key: str) -> str:
    """Replace ``${VAR}`` references; an unset variable is an error naming the key."""

    def replace(match: re.Match[str]) -> str:
        variable = match.group(1)
        if variable not in os.environ:
            raise ConfigError(source, key,
                              f"environment variable {variable} is not set: export it or write the path directly")
        return os.environ[variable]

    return _ENV_REF.sub(replace, value)


def resolve_local_path(value: str, source: str, key: str, base_dir: str) -> str:
    """A path on this machine: expand ``${VAR}`` and ``~``, then resolve against ``base_dir``.

    Symlinks are deliberately not resolved: a venv's ``bin/python`` is a symlink whose
    target is a different (venv-less) interpreter.
    """
    expanded = os.path.expanduser(expand_env(check_plain_path(value, source, key), source, key))
    return os.path.normpath(os.path.join(base_dir, expanded))


@dataclass(frozen=True)
class Section:
    """A mapping at dotted key ``path`` of ``source``, checked against known keys."""

    source: str
    path: str
    data: Mapping[str, Any]

    @classmethod
    def of(
        cls,
        value: object,
        source: str,
        path: str,
        allowed: Iterable[str] | None,
        required: Iterable[str] = (),
    ) -> Section:
        """Check ``value`` is a mapping with string keys, only ``allowed`` ones (None = any),
        and every ``required`` one present (and not null)."""
        if not isinstance(value, Mapping):
            raise ConfigError(source, path or None, f"expected a mapping of keys to values, got {describe(value)}")
        for name in value:
            if not isinstance(name, str):
                raise ConfigError(source, path or None, f"key {name!r} is not a string: quote it")
        section = cls(source, path, value)
        if allowed is not None:
            section._reject_unknown(tuple(allowed))
        for name in required:
            if value.get(name) is None:
                raise ConfigError(source, section.key(name), "missing required key: add it")
        return section

    def _reject_unknown(self, allowed: tuple[str, ...]) -> None:
        for name in self.data:
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(
                    self.source, self.key(name), f"unknown key{hint}; allowed keys here: {_allowed_text(allowed)}"
                )

    def key(self, name: str | int) -> str:
        return join_key(self.path, name)

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def raw(self, name: str, default: Any = None) -> Any:
        value = self.data.get(name)
        return default if value is None else value

    def error(self, name: str | int, message: str) -> ConfigError:
        return ConfigError(self.source, self.key(name), message)

    def _get(self, name: str, default: Any) -> Any:
        value = self.data.get(name)
        if value is None:
            if default is MISSING:
                raise self.error(name, "missing required key: add it")
            return default
        return value

    def _typed(self, name: str, default: Any, convert: Callable[[Any], T]) -> T:
        value = self.data.get(name)
        if value is None:
            return self._get(name, default)
        return convert(value)

    def get_str(self, name: str, default: Any = MISSING) -> Any:
        def convert(value: Any) -> str:
            if not isinstance(value, str):
                raise self.error(name, f"expected a string, got {describe(value)}; quote it if needed")
            return value

        return self._typed(name, default, convert)

    def get_bool(self, name: str, default: Any = MISSING) -> Any:
        def convert(value: Any) -> bool:
            if not isinstance(value, bool):
                raise self.error(name, f"expected true or false, got {describe(value)}")
            return value

        return self._typed(name, default, convert)

    def get_int(self, name: str, default: Any = MISSING, minimum: int | None = None, maximum: int | None = None) -> Any:
        def convert(value: Any) -> int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.error(name, f"expected a whole number, got {describe(value)}")
            if minimum is not None and value < minimum:
                raise self.error(name, f"{value} is too small: use {minimum} or more")
            if maximum is not None and value > maximum:
                raise self.error(name, f"{value} is too large: use {maximum} or less")
            return value

        return self._typed(name, default, convert)

    def get_choice(self, name: str, choices: Iterable[str], default: Any = MISSING) -> Any:
        options = tuple(choices)
        return self._typed(name, default, lambda value: check_choice(value, options, self.source, self.key(name)))

    def get_str_list(self, name: str, default: Any = ()) -> Any:
        def convert(value: Any) -> tuple[str, ...]:
            if not isinstance(value, list):
                raise self.error(name, f"expected a list of strings, got {describe(value)}")
            for index, item in enumerate(value):
                if not isinstance(item, str):
                    raise ConfigError(self.source, join_key(self.key(name), index),
                                      f"expected a string, got {describe(item)}")
            return tuple(value)

        return self._typed(name, default, convert)

    def get_duration(self, name: str, default: Any = MISSING, positive: bool = False) -> Any:
        def convert(value: Any) -> float:
            seconds = parse_duration(value, self.source, self.key(name))
            if positive and seconds <= 0:
                raise self.error(name, f"{value!r} must be more than zero")
            return seconds

        return self._typed(name, default, convert)

    def get_bytes(self, name: str, default: Any = MISSING, positive: bool = False) -> Any:
        def convert(value: Any) -> int:
            size = parse_bytes(value, self.source, self.key(name))
            if positive and size <= 0:
                raise self.error(name, f"{value!r} must be more than zero")
            return size

        return self._typed(name, default, convert)

    def get_power(self, name: str, default: Any = MISSING, positive: bool = False) -> Any:
        def convert(value: Any) -> float:
            watts = parse_power(value, self.source, self.key(name))
            if positive and watts <= 0:
                raise self.error(name, f"{value!r} must be more than zero")
            return watts

        return self._typed(name, default, convert)

    def get_fraction(self, name: str, default: Any = MISSING) -> Any:
        return self._typed(name, default, lambda value: parse_fraction(value, self.source, self.key(name)))

    def get_float(self, name: str, default: Any = MISSING, minimum: float | None = None) -> Any:
        def convert(value: Any) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.error(name, f"expected a number, got {describe(value)}")
            if minimum is not None and value < minimum:
                raise self.error(name, f"{value} is too small: use {minimum} or more")
            return float(value)

        return self._typed(name, default, convert)

    def get_section(
        self, name: str, allowed: Iterable[str] | None, required: Iterable[str] = (), default_empty: bool = True
    ) -> Section:
        """The nested mapping at ``name``; absent/null gives an empty section unless required."""
        value = self.data.get(name)
        if value is None:
            if not default_empty:
                raise self.error(name, "missing required key: add it")
            value = {}
        return Section.of(value, self.source, self.key(name), allowed, required)

    def get_frozen(self, name: str) -> Mapping[str, Any]:
        """A free-form mapping (options passed through to a runtime or sensor), frozen."""
        section = self.get_section(name, None)
        return freeze(section.data, self.source, section.path)
