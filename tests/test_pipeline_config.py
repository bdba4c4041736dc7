import pytest

from l1tagger.errors import ConfigError
from l1tagger.pipeline.config import RunConfig, dump_run_config, load_run_config


def test_default_is_valid_and_roundtrips(tmp_path):
    cfg = load_run_config()
    assert cfg == RunConfig()
    p = tmp_path / "c.yaml"
    p.write_text(dump_run_config(cfg))
    assert load_run_config(p) == cfg


@pytest.mark.parametrize(
    "text, field",
    [
        ("atention: full\n", "atention"),
        ("attention: softmax\n", "attention"),
        ("epochs: ten\n", "epochs"),
        ("d_model: 10\nn_heads: 3\n", "d_model"),
        ("- a\n- b\n", "mapping"),
        ("rtl: synth\n", "rtl"),
        ("rtl: on\n", "rtl"),
        ("rtl_latency_cutoff: 0\n", "rtl_latency_cutoff"),
    ],
)
def test_bad_config_names_field(tmp_path, text, field):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=field):
        load_run_config(p)


def test_bare_rtl_off_reads_as_off(tmp_path):
    """YAML 1.1 reads `off` as false: the RTL switch accepts it as written."""
    p = tmp_path / "c.yaml"
    p.write_text("rtl: off\n")
    assert load_run_config(p).rtl == "off"
    p.write_text("rtl: cosim\n")
    assert load_run_config(p).rtl == "cosim"


# ------------------------------------------------------------------------------------- nested run config (issue 13.5)
import dataclasses  # noqa: E402
from typing import Literal, Optional  # noqa: E402

import yaml  # noqa: E402

from l1tagger.models.config import ModelConfig  # noqa: E402
from l1tagger.pipeline.config import DERIVED  # noqa: E402
from l1tagger.qat.finetune import QATConfig  # noqa: E402
from l1tagger.training.config import TrainConfig  # noqa: E402
from l1tagger.utils.dataclass_io import from_dict, to_dict  # noqa: E402

#: a valid value other than the default, for the fields whose type alone does not give one
OTHER = {"features": "l1", "attention": "linformer", "linformer_init": "log_blocks", "ordering": "dr",
         "schedule": "onecycle", "device": "cpu", "background": ["q"], "inputs": "l1words",
         "l1features": {"log_mantissa_bits": 4}, "target_ebops": 123456.0, "interaction": "table_sym"}
#: fields that are valid only together with others: {field: {companion field: value}}
COMPANIONS = {"l1features": {"inputs": "l1words"}}


def _other(cls, f):
    value = getattr(cls(), f.name)
    if f.name in OTHER:
        return OTHER[f.name]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value * 2  # n_heads 2 -> 4 still divides d_model 16 -> 32
    if isinstance(value, float):
        return value * 2 + 0.5
    raise AssertionError(f"no other value for {cls.__name__}.{f.name}")


@pytest.mark.parametrize("section, cls", [("model", ModelConfig), ("train", TrainConfig), ("qat", QATConfig)])
def test_every_section_field_is_settable_from_a_run_file(tmp_path, section, cls):
    """Every field of ModelConfig / TrainConfig / QATConfig can be set in the run file and reaches the config the
    step builds (pair_hidden, linformer_init, schedule, ... used to be unreachable)."""
    settable = [f for f in dataclasses.fields(cls) if f"{section}.{f.name}" not in DERIVED]
    assert len(settable) >= 6
    for f in settable:
        value = _other(cls, f)
        p = tmp_path / "c.yaml"
        p.write_text(yaml.safe_dump({section: {f.name: value, **COMPANIONS.get(f.name, {})}}))
        cfg = load_run_config(p)
        built = {"model": lambda: cfg.train_config(5).model, "train": lambda: cfg.train_config(5),
                 "qat": cfg.qat_config}[section]()
        assert getattr(built, f.name) == value, f.name


@pytest.mark.parametrize("text, message", [
    ("model:\n  pair_hiden: 4\n", r"model\.pair_hiden: unknown key \(known keys of model: \[.*'pair_hidden'"),
    ("model:\n  n_classes: 3\n", r"model\.n_classes: may not be set \(taken from the dataset"),
    ("qat:\n  seed: 3\n", r"qat\.seed: may not be set \(the run's seed"),
    ("train:\n  lr: 1\n  schedule: linear\n", r"train\.schedule: 'linear' is not one of"),
    ("model:\n  pair_bias: 1\n", r"model\.pair_bias: expected bool, got int \(1\)"),
    ("model:\n  features: nope\n", r"model\.features: unknown feature set 'nope'"),
    ("model: 3\n", r"model: expected a mapping"),
    ("attention: topk\nmodel:\n  attention: full\n", r"attention and model\.attention are both given"),
    ("qat:\n  lr: .nan\n", r"qat\.lr: must be a finite number > 0"),
])
def test_nested_errors_name_the_dotted_path(tmp_path, text, message):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_run_config(p)


def test_flat_keys_are_shorthands_and_overrides_win(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("attention: linformer\nepochs: 3\nqat_epochs: 1\nqat_lr: 1.0e-4\nbatch_size: 64\n")
    cfg = load_run_config(p)
    assert (cfg.model.attention, cfg.train.epochs, cfg.qat.epochs, cfg.qat.lr) == ("linformer", 3, 1, 1e-4)
    assert cfg.train.batch_size == cfg.qat.batch_size == 64
    assert RunConfig(attention="linformer", epochs=3, qat_epochs=1, qat_lr=1e-4, batch_size=64) == cfg
    p.write_text("model:\n  attention: linformer\n  pair_hidden: 4\n")
    cfg = load_run_config(p, attention="topk", epochs=2)  # command-line overrides
    assert (cfg.model.attention, cfg.model.pair_hidden, cfg.train.epochs) == ("topk", 4, 2)


def test_print_config_is_nested_and_reads_back(tmp_path, capsys):
    from l1tagger.cli import main

    assert main(["run", "--print-config", "--attention", "topk"]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    assert data["model"]["attention"] == "topk" and "pair_hidden" in data["model"]
    assert "linformer_init" in data["model"] and "schedule" in data["train"] and "lr" in data["qat"]
    assert not {"attention", "qat_epochs", "n_particles"} & set(data)
    assert "n_classes" not in data["model"] and "seed" not in data["qat"] and "model" not in data["train"]
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(data))
    assert load_run_config(p) == load_run_config(attention="topk")


def test_run_help_example_loads(tmp_path):
    from l1tagger.commands.run import DESCRIPTION

    example = DESCRIPTION.split("\n\n")[1]
    p = tmp_path / "c.yaml"
    p.write_text("\n".join(line[2:] for line in example.splitlines()))
    cfg = load_run_config(p)
    assert cfg.model.linformer_init == "log_blocks" and cfg.train.schedule == "onecycle" and cfg.clock_ns is None


def test_fingerprints_follow_the_nested_fields():
    from l1tagger.pipeline.run import STEPS
    from l1tagger.pipeline.steps import fingerprint

    def fps(cfg):
        out = {}
        for s in STEPS:
            out[s.name] = fingerprint(s, cfg, out)
        return out

    base = fps(RunConfig())
    changed = {
        "model.pair_hidden": fps(RunConfig(model=ModelConfig(pair_hidden=4))),
        "model.n_particles": fps(RunConfig(n_particles=8)),
        "train.schedule": fps(RunConfig(train=TrainConfig(epochs=30, schedule="onecycle"))),
        "qat.lr": fps(RunConfig(qat=QATConfig(epochs=4, lr=1e-4))),
        "clock_ns": fps(RunConfig(clock_ns=2.5)),
    }
    first_rerun = {k: next(s for s in base if v[s] != base[s]) for k, v in changed.items()}
    assert first_rerun == {"model.pair_hidden": "train", "model.n_particles": "data", "train.schedule": "train",
                           "qat.lr": "qat", "clock_ns": "convert"}


def test_clock_defaults_to_the_budget():
    assert RunConfig().clock_period_ns == pytest.approx(1e3 / 360)
    assert RunConfig(budget="cms_phase2_tmux6_240mhz").clock_period_ns == pytest.approx(1e3 / 240)
    assert RunConfig(clock_ns=2.5).clock_period_ns == 2.5


def test_budget_default_and_clock_check_live_with_the_budgets(tmp_path):
    """Issue 13.4: DEFAULT_BUDGET (was in report/schema.py) and check_clock_ns (was in pipeline/config.py, imported
    from there by `l1tagger convert`) are report/budgets.py's; the run file, convert and rtl use the same ones."""
    import l1tagger.pipeline.config as pc
    from l1tagger.report import budgets

    assert RunConfig().budget == budgets.DEFAULT_BUDGET == "cms_phase2_tmux6_360mhz"
    assert not hasattr(pc, "CLOCK_RTOL") and pc.check_clock_ns is budgets.check_clock_ns
    b240 = budgets.load_budget("cms_phase2_tmux6_240mhz")
    budgets.check_clock_ns(1e3 / 240 * (1 + budgets.CLOCK_RTOL / 2), b240)  # within the tolerance
    with pytest.raises(ConfigError, match=r"^--clock-ns: 5\.0 ns \(200 MHz\) is slower than the clock of budget "):
        budgets.check_clock_ns(5.0, b240, "--clock-ns")
    (tmp_path / "r.yaml").write_text("budget: cms_phase2_tmux6_240mhz\nclock_ns: 5.0\n")
    with pytest.raises(ConfigError, match=r"^clock_ns: 5\.0 ns \(200 MHz\) is slower"):
        pc.preflight(load_run_config(tmp_path / "r.yaml"))


# ------------------------------------------------------------------------------------------- utils.dataclass_io
@dataclasses.dataclass
class Inner:
    k: int
    name: str = "x"


@dataclasses.dataclass
class Outer:
    inner: Inner
    rate: float = 1.0
    flag: bool = False
    maybe: Optional[int] = None
    sizes: tuple[int, ...] = (1,)
    names: list[str] = dataclasses.field(default_factory=list)
    mode: Literal["a", "b"] = "a"


def test_from_dict_is_strict_and_names_the_path():
    o = from_dict(Outer, {"inner": {"k": 2}, "rate": 3, "maybe": None, "sizes": [1, 2], "names": ["a"], "mode": "b"})
    assert o == Outer(Inner(2), 3.0, False, None, (1, 2), ["a"], "b") and isinstance(o.rate, float)
    assert from_dict(Outer, to_dict(o)) == o
    for data, message in (
        ({}, r"^inner: missing"),
        ({"inner": {}}, r"^inner\.k: missing"),
        ({"inner": {"k": True}}, r"^inner\.k: expected int, got bool"),
        ({"inner": {"k": 1.5}}, r"^inner\.k: expected int, got float"),
        ({"inner": {"k": 1, "kk": 2}}, r"^inner\.kk: unknown key \(known keys of inner: \['k', 'name'\]\)"),
        ({"inner": {"k": 1}, "rate": "1"}, r"^rate: expected float, got str"),
        ({"inner": {"k": 1}, "flag": 0}, r"^flag: expected bool, got int"),
        ({"inner": {"k": 1}, "maybe": "x"}, r"^maybe: expected int, got str"),
        ({"inner": {"k": 1}, "sizes": [1, "2"]}, r"^sizes\[1\]: expected int, got str"),
        ({"inner": {"k": 1}, "sizes": 3}, r"^sizes: expected a list"),
        ({"inner": {"k": 1}, "mode": "c"}, r"^mode: 'c' is not one of \['a', 'b'\]"),
        ({"inner": [1]}, r"^inner: expected a mapping"),
    ):
        with pytest.raises(ConfigError, match=message):
            from_dict(Outer, data)
    with pytest.raises(ConfigError, match=r"^inner\.name: may not be set \(fixed\)"):
        from_dict(Outer, {"inner": {"k": 1, "name": "y"}}, fixed={"inner.name": "fixed"})


def test_validated_prefixes_the_dotted_path():
    from l1tagger.utils.dataclass_io import join_path, validated

    assert join_path("", "model") == "model" and join_path("run.train", "model") == "run.train.model"
    with pytest.raises(ConfigError, match=r"^train\.model\.attention: 'x' is not one of"):
        validated(ModelConfig(attention="x"), "train.model")
    with pytest.raises(ConfigError, match=r"^attention: 'x' is not one of"):
        validated(ModelConfig(attention="x"))
