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
