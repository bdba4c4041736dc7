"""The one YAML loader of every file the project reads (run config, recipe, budget, train config).

``yaml.safe_load`` silently keeps the last of two equal keys and raises raw ``yaml`` exceptions; :func:`load_yaml`
refuses duplicate keys and turns every failure into a :class:`~l1tagger.errors.ConfigError` naming the file and
the line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from l1tagger.errors import ConfigError

_MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(ConfigError):
    """A YAML mapping with the same key twice (the second silently replaced the first)."""


class _Duplicate(Exception):
    def __init__(self, key, line: int, first_line: int):
        super().__init__(key)
        self.key, self.line, self.first_line = key, line, first_line


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (``<<`` merges may still be overridden)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # unhashable key: the base constructor reports it
                    continue
                line = key_node.start_mark.line + 1
                if first is not None:
                    raise _Duplicate(key, line, first)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, UniqueKeyLoader.construct_mapping)


def parse_yaml(text: str, source: str = "<string>") -> Any:
    """Parse YAML ``text`` strictly; ``source`` names it in error messages."""
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except _Duplicate as exc:
        raise DuplicateKeyError(f"{source}:{exc.line}: duplicate key {exc.key!r} (first given on line "
                                f"{exc.first_line}); remove one of them") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise ConfigError(f"{where}: invalid YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") \
            from None


def load_yaml(path: str | os.PathLike) -> Any:
    """Read and parse the YAML file ``path`` (duplicate keys, bad syntax, unreadable file -> ConfigError)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a YAML file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return parse_yaml(text, str(path))
