"""The resumable step runner: reruns resume at the first step whose inputs changed."""

from dataclasses import dataclass

import pytest

from l1tagger.errors import L1TaggerError
from l1tagger.pipeline.steps import Step, run_steps


@dataclass
class Cfg:
    a: int = 1
    b: int = 2


def make_steps(calls):
    def first(cfg, ctx):
        calls.append("first")
        p = ctx.run_dir / "first.txt"
        p.write_text(str(cfg.a))
        return {"out": p}

    def second(cfg, ctx):
        calls.append("second")
        src = ctx.artifact("first", "out").read_text()
        p = ctx.run_dir / "second.txt"
        p.write_text(src + str(cfg.b))
        return {"out": p}

    return [Step("first", first, reads=("a",)), Step("second", second, reads=("b",), after=("first",))]


def test_resume_skips_unchanged_and_redoes_downstream(tmp_path):
    calls = []
    steps = make_steps(calls)
    run_steps(steps, Cfg(), tmp_path, log=lambda m: None)
    assert calls == ["first", "second"]
    run_steps(steps, Cfg(), tmp_path, log=lambda m: None)
    assert calls == ["first", "second"]  # nothing changed
    run_steps(steps, Cfg(b=5), tmp_path, log=lambda m: None)
    assert calls == ["first", "second", "second"]  # only the step reading b
    run_steps(steps, Cfg(a=7, b=5), tmp_path, log=lambda m: None)
    assert calls[-2:] == ["first", "second"]  # upstream change propagates
    assert (tmp_path / "second.txt").read_text() == "75"


def test_missing_artifact_reruns(tmp_path):
    calls = []
    steps = make_steps(calls)
    run_steps(steps, Cfg(), tmp_path, log=lambda m: None)
    (tmp_path / "second.txt").unlink()
    run_steps(steps, Cfg(), tmp_path, log=lambda m: None)
    assert calls == ["first", "second", "second"]


def test_dependency_order_checked(tmp_path):
    calls = []
    first, second = make_steps(calls)
    with pytest.raises(L1TaggerError, match="depends on"):
        run_steps([second, first], Cfg(), tmp_path, log=lambda m: None)


@dataclass
class FileCfg:
    recipe: str = ""


def test_file_valued_field_content_is_an_input(tmp_path):
    calls = []

    def step(cfg, ctx):
        calls.append(1)
        return {}

    recipe = tmp_path / "r.yaml"
    recipe.write_text("bits: 8\n")
    steps = [Step("q", step, reads=("recipe",))]
    run_steps(steps, FileCfg(str(recipe)), tmp_path / "run", log=lambda m: None)
    run_steps(steps, FileCfg(str(recipe)), tmp_path / "run", log=lambda m: None)
    assert len(calls) == 1
    recipe.write_text("bits: 6\n")  # same path, new contents -> rerun
    run_steps(steps, FileCfg(str(recipe)), tmp_path / "run", log=lambda m: None)
    assert len(calls) == 2
