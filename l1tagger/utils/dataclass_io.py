"""One strict loader from plain data (parsed YAML / JSON) to documented dataclasses, and its inverse.

    cfg = from_dict(RunConfig, data)        # ConfigError "model.pair_hiden: unknown key (known keys of model: ...)"
    data = to_dict(cfg)                     # nested plain dicts, field order kept (what from_dict reads back)

Rules, checked against the field annotations (every problem names the dotted path of the field):

- every key must be a field; a field left out keeps its default (a field without a default is required);
- a nested dataclass field takes a mapping, loaded by the same rules;
- ``int`` takes an integer (not a bool), ``float`` an integer or a float (stored as float), ``bool`` only true/false,
  ``str`` only a string, ``Path`` a string;
- ``X | None`` / ``Optional[X]`` also takes null;
- ``list[X]`` and ``tuple[X, ...]`` take a sequence (each item checked), a bare ``list`` / ``dict`` a sequence /
  mapping; ``Literal[...]`` one of its values;
- ``fixed`` names fields the caller sets itself (dotted paths, with the reason): giving one is an error.

Values are only type-checked here; ranges and cross-field rules stay in each dataclass's ``validate()`` (run it with
:func:`validated` to get the same dotted paths). A ``ConfigError`` raised while constructing a dataclass (e.g. in
``__post_init__``) gets the path prefixed.

Every strict loader of a documented dataclass goes through :func:`from_dict`: ``RunConfig``, ``ModelConfig``,
``TrainConfig``, the ViT configs, ``SoftmaxSpec``, ``PairTableSpec``, ``L1FeatureSpec`` (its word format resolved
by name), ``SynthesisReport``, ``CsimRecord``.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, Mapping

from l1tagger.errors import ConfigError


def join_path(path: str, key: str) -> str:
    """The dotted path of field ``key`` inside ``path`` ("" = the top level): ``join_path("model", "d_model")``."""
    return f"{path}.{key}" if path else key


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def from_dict(cls, data, path: str = "", fixed: Mapping[str, str] | None = None):
    """An instance of dataclass ``cls`` from the mapping ``data`` (strict, see the module docstring).

    path: dotted prefix of ``cls`` inside the whole document ("" at the top), used in every message.
    fixed: {dotted path (relative to the top): why it may not be given}.
    """
    fixed = fixed or {}
    if not isinstance(data, Mapping):
        where = path or "top level"
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} keys, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        where = join_path(path, str(key))
        if where in fixed:
            raise ConfigError(f"{where}: may not be set ({fixed[where]})")
        if not isinstance(key, str) or key not in fields:
            known = sorted(k for k in fields if join_path(path, k) not in fixed)
            raise ConfigError(f"{where}: unknown key (known keys{' of ' + path if path else ''}: {known})")
    missing = [k for k, f in fields.items() if k not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{join_path(path, missing[0])}: missing (required field{'s' if len(missing) > 1 else ''} "
                          f"{missing})")
    values = {key: _convert(value, hints[key], join_path(path, key), fixed) for key, value in data.items()}
    try:
        return cls(**values)
    except ConfigError as exc:
        raise nested_error(path, exc, cls) from None


def nested_error(path: str, exc: ConfigError, cls) -> ConfigError:
    """``exc`` (raised by dataclass ``cls`` about one of its fields, "field: problem") with the dotted ``path`` of
    ``cls`` prefixed: "model.field: problem"; a message that names no field becomes "model: message"."""
    if not path:
        return exc
    message = str(exc)
    head = message.split(":", 1)[0]
    if head in {f.name for f in dataclasses.fields(cls)}:
        return ConfigError(f"{path}.{message}")
    return ConfigError(f"{path}: {message}")


def validated(obj, path: str = ""):
    """``obj.validate()`` (a dataclass's own range and cross-field checks) with the dotted ``path`` of ``obj``
    prefixed to a ConfigError's message (:func:`nested_error`); returns what ``validate`` returns (``obj``)."""
    try:
        return obj.validate()
    except ConfigError as exc:
        raise nested_error(path, exc, type(obj)) from None


def _convert(value, tp, path: str, fixed: Mapping[str, str]):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _convert(value, option, path, fixed)
            except ConfigError as exc:
                errors.append(exc)
        if len(options) == 1:
            raise errors[0]
        raise ConfigError(f"{path}: expected {' or '.join(_type_name(a) for a in args)}, got "
                          f"{type(value).__name__} ({value!r})")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path, fixed)
    if tp in (list, tuple) or origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__} ({value!r})")
        container = origin or tp
        if container is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise ConfigError(f"{path}: expected {len(args)} items, got {len(value)}")
            return tuple(_convert(v, a, f"{path}[{i}]", fixed) for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        return container(_convert(v, item, f"{path}[{i}]", fixed) for i, v in enumerate(value))
    if tp is dict or origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__} ({value!r})")
        if args:
            return {_convert(k, args[0], path, fixed): _convert(v, args[1], join_path(path, str(k)), fixed)
                    for k, v in value.items()}
        return dict(value)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
    elif isinstance(tp, type):
        if isinstance(value, tp):
            return value
    else:
        raise TypeError(f"{path}: from_dict cannot check the annotation {tp!r}")  # a programming error
    raise ConfigError(f"{path}: expected {_type_name(tp)}, got {type(value).__name__} ({value!r})")


def to_dict(obj, path: str = "", fixed: Mapping[str, str] | None = None) -> dict:
    """The fields of dataclass ``obj`` as nested plain data (tuples as lists, Paths as strings), leaving out the
    ``fixed`` paths: what :func:`from_dict` reads back into an equal object."""
    fixed = fixed or {}
    out = {}
    for f in dataclasses.fields(obj):
        where = join_path(path, f.name)
        if not f.init or where in fixed:
            continue
        out[f.name] = _plain(getattr(obj, f.name), where, fixed)
    return out


def _plain(value, path: str, fixed: Mapping[str, str]):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value, path, fixed)
    if isinstance(value, (list, tuple)):
        return [_plain(v, path, fixed) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v, join_path(path, str(k)), fixed) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def loads_json(text, what: str):
    """``json.loads(text)``; ConfigError naming ``what`` (e.g. "softmax spec") when the text is not valid JSON."""
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} is not valid JSON: {exc}") from None
