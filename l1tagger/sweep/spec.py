"""The sweep file: a base run config, a grid of overrides, where and how to run; expanded into validated points.

    name: attn                      # prefix of every point's run name (default: the sweep file's stem)
    base: configs/base.yaml         # a run YAML (path relative to the working directory) or a mapping of its keys
    grid:                           # dotted RunConfig keys -> lists of values; the points are their cartesian product
      model.attention: [full, linformer, topk]
      seed: [1, 2]
    points:                         # optional explicit points (mappings of dotted keys), after the grid's
      - {model.attention: topk, model.topk_k: 4}
    workers: 2                      # Dask workers = points at a time (default: half the CPU cores)
    cluster: local                  # local (default) | none (one after another, no Dask) | a mapping:
                                    #   {kind: slurm|htcondor, <dask-jobqueue keyword arguments>...}
    signal_efficiency: 0.5          # working point of the background-rejection column
    out: sweeps/attn                # the sweep's folder: points/, logs/, runs/, hls_projects/, data/, pareto.*

Every point is an ordinary ``l1tagger run`` of ``base`` with its overrides, named ``<name>-<hash of the
overrides>``; its run and HLS project go under ``out`` (``runs/``, ``hls_projects/``) and generated datasets under
``out/data`` unless ``base`` sets ``runs_dir`` / ``projects_dir`` / ``data_dir``. :func:`load_sweep` builds and
checks every point's whole RunConfig (``RunConfig.validate`` and the pipeline's ``preflight``: recipe, budget,
dataset, directories) before anything runs; every problem is a ConfigError naming the sweep file, the point and the
key.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import itertools
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from l1tagger.errors import ConfigError
from l1tagger.pipeline.config import DERIVED, FLAT_KEYS, RunConfig, load_run_config, nest_flat_keys, preflight
from l1tagger.utils.dataclass_io import from_dict
from l1tagger.utils.provenance import config_key
from l1tagger.utils.yamlio import load_yaml

#: the keys of a sweep file
SWEEP_KEYS = ("name", "base", "grid", "points", "workers", "cluster", "signal_efficiency", "out", "peers")
#: cluster kinds: local = dask.distributed.LocalCluster; none = no Dask; the others through dask-jobqueue
CLUSTER_KINDS = {"local": None, "none": None, "slurm": "SLURMCluster", "htcondor": "HTCondorCluster"}
#: RunConfig keys the sweep sets for every point (a grid or point may not)
SWEEP_SET = {"name": "every point is named <sweep name>-<hash of its overrides>",
             "runs_dir": "set it in base: (default <out>/runs)",
             "projects_dir": "set it in base: (default <out>/hls_projects)"}
#: a sweep name: the prefix of run names (NAME_RE of the pipeline, leaving room for "-<8 hex>")
PREFIX_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


@dataclass
class ClusterSpec:
    kind: str = "local"
    options: dict = field(default_factory=dict)  # keyword arguments of the cluster class


@dataclass
class SweepPoint:
    name: str
    origin: str  # "grid" or "points[i]"
    overrides: dict  # {dotted RunConfig key: value}, canonical (flat shorthands expanded)
    config: RunConfig

    def describe(self) -> str:
        return _describe(self.overrides)


@dataclass
class SweepSpec:
    source: Path
    name: str
    base: dict  # nested RunConfig keys (flat shorthands nested), without the sweep's own
    grid: dict  # {grid key: [{dotted leaf: value} for each value]}
    workers: int
    cluster: ClusterSpec
    signal_efficiency: float
    out: Path
    points: list[SweepPoint] = field(default_factory=list)
    #: same-jets peer result files (``python -m l1tagger.peers`` -> peers.json) whose rows join the table and fronts
    peers: list[Path] = field(default_factory=list)

    @property
    def points_dir(self) -> Path:
        return self.out / "points"

    @property
    def logs_dir(self) -> Path:
        return self.out / "logs"

    def config_path(self, point: SweepPoint) -> Path:
        """The point's run config file (what ``l1tagger run`` is given)."""
        return self.points_dir / f"{point.name}.yaml"


def default_workers() -> int:
    """Half the CPU cores (each point trains with up to 2 torch threads), at least 1."""
    return max(1, (os.cpu_count() or 1) // 2)


def load_sweep(path: str | os.PathLike, out: str | os.PathLike | None = None, workers: int | None = None,
               cluster: str | None = None) -> SweepSpec:
    """Parse the sweep file ``path`` strictly and expand it into validated points (nothing is written).

    out, workers, cluster: command-line overrides of the file's ``out:``, ``workers:``, ``cluster:`` (kind).
    """
    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sweep keys {list(SWEEP_KEYS)}")
    for key in data:
        if key not in SWEEP_KEYS:
            raise ConfigError(f"{path}: {key}: unknown key (known keys: {list(SWEEP_KEYS)})")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not PREFIX_RE.fullmatch(name):
        raise ConfigError(f"{path}: name: {name!r} is not a run-name prefix: letters, digits, '.', '_', '-' starting "
                          f"with a letter or digit, at most 80 characters")
    spec = SweepSpec(
        source=path, name=name, base=_base(path, data.get("base")), grid=_grid(path, data.get("grid")),
        workers=_workers(path, data.get("workers") if workers is None else workers, workers is not None),
        cluster=_cluster(path, data.get("cluster") if cluster is None else cluster),
        signal_efficiency=_efficiency(path, data.get("signal_efficiency", 0.5)),
        out=_out(path, out if out is not None else data.get("out", str(Path("sweeps") / name))),
        peers=_peers(path, data.get("peers")),
    )
    from l1tagger.sweep.collect import peer_rows

    for f in spec.peers:  # a bad peers file fails before anything runs
        peer_rows(f, spec.signal_efficiency)
    overrides = [("grid", o) for o in expand_grid(spec.grid)] if spec.grid else []
    listed = data.get("points")
    if listed is not None:
        if not isinstance(listed, list):
            raise ConfigError(f"{path}: points: expected a list of mappings of dotted RunConfig keys, got "
                              f"{type(listed).__name__}")
        for i, p in enumerate(listed):
            overrides.append((f"points[{i}]", canonical_overrides(path, f"points[{i}]", p)))
    if not overrides:
        raise ConfigError(f"{path}: grid: the sweep has no point; give grid: {{dotted key: [values]}} with at least "
                          f"one key (or points: [...])")
    seen: dict[str, str] = {}
    for origin, ov in overrides:
        point_name = f"{spec.name}-{config_key(ov)[:8]}"
        if point_name in seen:
            raise ConfigError(f"{path}: {origin}: the same point as {seen[point_name]} ({_describe(ov)})")
        seen[point_name] = origin
        spec.points.append(SweepPoint(point_name, origin, ov, build_point_config(spec, point_name, origin, ov)))
    return spec


def expand_grid(grid: Mapping[str, list[dict]]) -> list[dict]:
    """The cartesian product of a parsed grid ({key: [{leaf: value} per value]}), in file order: the last key
    varies fastest."""
    out = []
    for choice in itertools.product(*grid.values()):
        ov: dict = {}
        for leaves in choice:
            ov.update(leaves)
        out.append(ov)
    return out


def canonical_overrides(path: Path, where: str, mapping) -> dict:
    """{dotted leaf key: value} of a point's overrides, each key checked against RunConfig (flat shorthands such as
    ``attention`` expanded to ``model.attention``; a section given as a mapping expanded to its fields)."""
    if not isinstance(mapping, dict) or not mapping:
        raise ConfigError(f"{path}: {where}: expected a non-empty mapping of dotted RunConfig keys to values, got "
                          f"{mapping!r}")
    out: dict = {}
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise ConfigError(f"{path}: {where}: key {key!r} is not a string")
        for leaf, v in leaf_values(path, f"{where}.{key}", key, value).items():
            if leaf in out:
                raise ConfigError(f"{path}: {where}.{key}: sets {leaf}, which is given twice")
            out[leaf] = v
    return out


def leaf_values(path: Path, where: str, key: str, value) -> dict:
    """{dotted leaf key: value} that ``key: value`` sets (a flat shorthand expanded to its target(s), a section
    given as a mapping to its fields); ConfigError naming ``where`` when a key is no RunConfig field, is set by the
    run or by the sweep itself, or a section is not given a mapping."""
    if key in FLAT_KEYS:
        return {target: value for target in FLAT_KEYS[key]}
    if key in SWEEP_SET:
        raise ConfigError(f"{path}: {where}: may not be set per point ({SWEEP_SET[key]})")
    cls, parts = RunConfig, key.split(".")
    for i, part in enumerate(parts):
        dotted = ".".join(parts[: i + 1])
        if dotted in DERIVED:
            raise ConfigError(f"{path}: {where}: may not be set ({DERIVED[dotted]})")
        fields = {f.name for f in dataclasses.fields(cls) if f.init}
        if part not in fields:
            section = ".".join(parts[:i])
            known = sorted(f for f in fields if (f"{section}.{f}" if section else f) not in DERIVED)
            raise ConfigError(f"{path}: {where}: unknown key (known keys{' of ' + section if section else ''}: "
                              f"{known})")
        tp = typing.get_type_hints(cls)[part]
        if dataclasses.is_dataclass(tp):
            cls = tp
            continue
        if i < len(parts) - 1:
            raise ConfigError(f"{path}: {where}: {dotted} is a value, not a section")
        return {key: value}
    if not isinstance(value, dict) or not value:  # a whole section: model: {...}
        raise ConfigError(f"{path}: {where}: a section; give a non-empty mapping of its keys or dotted keys "
                          f"({key}.<field>)")
    out: dict = {}
    for sub, v in value.items():
        out.update(leaf_values(path, f"{where}.{sub}", f"{key}.{sub}", v))
    return out


def build_point_config(spec: SweepSpec, name: str, origin: str, overrides: dict) -> RunConfig:
    """The point's whole RunConfig (base + overrides + the sweep's name and directories), validated and
    preflighted; ConfigError names the sweep file, the point and the key."""
    data = _merge(spec.base, _nest(overrides))
    data["name"] = name
    for key, sub in (("runs_dir", "runs"), ("projects_dir", "hls_projects"), ("data_dir", "data")):
        data[key] = str(Path(data.get(key) or spec.out / sub).absolute())
    try:
        cfg = load_run_config(None, **data)
        preflight(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{spec.source}: point {name} ({origin}: {_describe(overrides)}): {exc}") from None
    return cfg


# ------------------------------------------------------------------------------------------------ parsing helpers
def _base(path: Path, base) -> dict:
    if base is None:
        return {}
    where = "base"
    if isinstance(base, str):
        base_path = Path(base)
        if not base_path.is_file():
            raise ConfigError(f"{path}: base: {base} is not a file (a run YAML, relative to the working directory, "
                              f"or a mapping of RunConfig keys)")
        where, base = f"base ({base_path})", load_yaml(base_path)
        base = {} if base is None else base
    if not isinstance(base, dict):
        raise ConfigError(f"{path}: {where}: expected a mapping of RunConfig keys or the path of a run YAML")
    try:
        nested = nest_flat_keys(base)
        if nested.get("rtl") is False:  # YAML 1.1 reads `rtl: off` as false (load_run_config maps it back)
            nested["rtl"] = "off"
        from_dict(RunConfig, {k: v for k, v in nested.items() if k != "name"}, fixed=DERIVED)  # keys and types
    except ConfigError as exc:
        raise ConfigError(f"{path}: {where}: {exc}") from None
    nested.pop("name", None)  # the points are named by the sweep
    return nested


def _grid(path: Path, grid) -> dict[str, list[dict]]:
    """{grid key: [{dotted leaf: value} for each of its values]}, every key and value checked."""
    if grid is None:
        return {}
    if not isinstance(grid, dict):
        raise ConfigError(f"{path}: grid: expected a mapping of dotted RunConfig keys to lists of values, got "
                          f"{type(grid).__name__}")
    owner: dict[str, str] = {}
    out: dict[str, list[dict]] = {}
    for key, values in grid.items():
        if not isinstance(key, str):
            raise ConfigError(f"{path}: grid: key {key!r} is not a string")
        if not isinstance(values, list):
            raise ConfigError(f"{path}: grid.{key}: expected a list of values, got {values!r} (write [{values!r}] "
                              f"for one value)")
        if not values:
            raise ConfigError(f"{path}: grid.{key}: empty list of values: the grid would have no point")
        out[key] = [leaf_values(path, f"grid.{key}", key, v) for v in values]
        for leaf in set().union(*out[key]):
            if owner.setdefault(leaf, key) != key:
                raise ConfigError(f"{path}: grid.{key}: sets {leaf}, which grid.{owner[leaf]} sets too")
    return out


def _workers(path: Path, workers, from_cli: bool) -> int:
    if workers is None:
        return default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        where = "--workers" if from_cli else "workers"
        raise ConfigError(f"{path}: {where}: must be a positive integer, got {workers!r}")
    return workers


def _cluster(path: Path, cluster) -> ClusterSpec:
    if cluster is None:
        return ClusterSpec()
    if isinstance(cluster, str):
        cluster = {"kind": cluster}
    if not isinstance(cluster, dict):
        raise ConfigError(f"{path}: cluster: expected one of {list(CLUSTER_KINDS)} or a mapping {{kind: ..., "
                          f"<cluster keyword arguments>}}, got {cluster!r}")
    options = dict(cluster)
    kind = options.pop("kind", "local")
    if kind not in CLUSTER_KINDS:
        raise ConfigError(f"{path}: cluster.kind: {kind!r} is not one of {list(CLUSTER_KINDS)}")
    if kind == "none" and options:
        raise ConfigError(f"{path}: cluster.{next(iter(options))}: unknown key (cluster kind 'none' takes no options)")
    for key in ("n_workers", "threads_per_worker", "processes") if kind == "local" else ():
        if key in options:
            raise ConfigError(f"{path}: cluster.{key}: set by the sweep (one single-threaded worker process per "
                              f"point at a time; set workers: instead)")
    if CLUSTER_KINDS[kind] and importlib.util.find_spec("dask_jobqueue") is None:
        raise ConfigError(f"{path}: cluster.kind: {kind} needs dask-jobqueue (pip install 'l1tagger[cluster]')")
    return ClusterSpec(kind, options)


def _efficiency(path: Path, eff) -> float:
    if isinstance(eff, bool) or not isinstance(eff, (int, float)) or not 0 < eff < 1:
        raise ConfigError(f"{path}: signal_efficiency: must be a number in (0, 1), got {eff!r}")
    return float(eff)


def _peers(path: Path, peers) -> list[Path]:
    """``peers:``: a list of peers.json files (relative to the sweep file), each of which must exist and hold rows."""
    if peers is None:
        return []
    if not isinstance(peers, list) or not all(isinstance(p, str) and p.strip() for p in peers):
        raise ConfigError(f"{path}: peers: expected a list of peers.json paths, got {peers!r}")
    out = []
    for i, p in enumerate(peers):
        f = Path(p) if Path(p).is_absolute() else (path.parent / p)
        if not f.is_file():
            raise ConfigError(f"{path}: peers[{i}]: {f}: no such file (write it with `python -m l1tagger.peers`)")
        out.append(f.absolute())
    return out


def _out(path: Path, out) -> Path:
    if not isinstance(out, (str, os.PathLike)) or not str(out).strip():
        raise ConfigError(f"{path}: out: must be a directory path, got {out!r}")
    return Path(out).absolute()


def _nest(overrides: Mapping[str, Any]) -> dict:
    out: dict = {}
    for key, value in overrides.items():
        *sections, leaf = key.split(".")
        node = out
        for s in sections:
            node = node.setdefault(s, {})
        node[leaf] = copy.deepcopy(value)
    return out


def _merge(base: Mapping, overrides: Mapping) -> dict:
    out = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _describe(overrides: Mapping) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "(base)"
