"""Tagging tasks as groups of dataset classes.

A task maps each of its output classes to the dataset class names it collects, so the same definition works for
the hls4ml 5-class set (g, q, W, Z, t) and JetClass names (QCD, Wqq, Zqq, Tbqq). The two tasks of the attention
fraction study: one separating very different processes (QCD against t→bqq') and one separating similar ones
(W against Z). Add a task by adding an entry.
"""

from __future__ import annotations

import numpy as np

from l1tagger.data.jetset import JetSet
from l1tagger.errors import ConfigError, DataError

#: task name -> {output class: dataset class names collected into it}
TASKS: dict[str, dict[str, list[str]]] = {
    "qcd_vs_top": {"QCD": ["g", "q", "QCD", "qcd"], "top": ["t", "Tbqq", "top"]},
    "w_vs_z": {"W": ["W", "Wqq"], "Z": ["Z", "Zqq"]},
}


def resolve_groups(task: str | dict) -> dict[str, list[str]]:
    """A task name from TASKS or an explicit {class: [dataset classes]} mapping -> the mapping (validated)."""
    if isinstance(task, str):
        if task not in TASKS:
            raise ConfigError(f"task: {task!r} is not one of {sorted(TASKS)}")
        return {k: list(v) for k, v in TASKS[task].items()}
    if not isinstance(task, dict) or len(task) < 2:
        raise ConfigError(f"task: expected a task name or a mapping of >= 2 classes, got {task!r}")
    seen: dict[str, str] = {}
    for group, members in task.items():
        if isinstance(members, str) or not members:
            raise ConfigError(f"task class {group!r}: expected a non-empty list of dataset class names")
        for m in members:
            if m in seen and seen[m] != group:
                raise ConfigError(f"task: dataset class {m!r} is in both {seen[m]!r} and {group!r}")
            seen[m] = group
    return {str(k): [str(m) for m in v] for k, v in task.items()}


def select_task(jets: JetSet, groups: dict[str, list[str]]) -> JetSet:
    """Keep the jets of the task's classes and relabel them 0..len(groups)-1 in the task's class order."""
    source = {name: i for i, name in enumerate(jets.class_names)}
    new_label = np.full(len(jets.class_names), -1, np.int64)
    for g, (group, members) in enumerate(groups.items()):
        present = [m for m in members if m in source]
        if not present:
            raise DataError(f"task class {group!r} needs one of the dataset classes {members}, the jets have "
                            f"{jets.class_names}")
        new_label[[source[m] for m in present]] = g
    keep = np.flatnonzero(new_label[jets.labels] >= 0)
    if keep.size == 0:
        raise DataError(f"no jets of the task classes {list(groups)} among {jets.class_counts()}")
    out = jets.subset(keep)
    out.labels = new_label[out.labels]
    out.class_names = list(groups)
    out.meta = dict(out.meta, task_groups=groups)
    return out


def task_members(groups: dict[str, list[str]], class_names: list[str]) -> dict[str, list[int]]:
    """For an analysis task: which of a model's classes fall in each task class (by name or alias)."""
    return {g: [i for i, c in enumerate(class_names) if c == g or c in members] for g, members in groups.items()}
