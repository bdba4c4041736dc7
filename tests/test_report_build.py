"""`l1tagger build`: tool discovery, exit-code checking, logs, report collection; real vendor runs when installed."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from l1tagger.cli import main
from l1tagger.errors import ConfigError, ToolNotFoundError
from l1tagger.build import vendor

REPORTS = Path(__file__).parent / "data" / "reports"
HAVE_HLS = shutil.which("vitis_hls") or shutil.which("vitis-run")


@pytest.fixture(scope="module")
def hls_project(tmp_path_factory):
    """A real (tiny) hls4ml Vitis project: Quant -> MatMul(const) -> Quant, written by hls4ml 1.3."""
    import hls4ml
    from onnx import TensorProto, helper, numpy_helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    qd = "qonnx.custom_op.general"

    def c(n, a):
        return numpy_helper.from_array(np.asarray(a, np.float32), n)

    inits = [c("s", 0.0625), c("z", 0.0), c("b", 8.0), c("W", np.arange(12).reshape(4, 3) % 5 - 2), c("ws", 1.0),
             c("wb", 4.0), c("s2", 0.25)]
    q = dict(domain=qd, signed=1, narrow=0, rounding_mode="ROUND")
    nodes = [helper.make_node("Quant", ["x", "s", "z", "b"], ["xq"], name="qx", **q),
             helper.make_node("Quant", ["W", "ws", "z", "wb"], ["Wq"], name="qw", **q),
             helper.make_node("MatMul", ["xq", "Wq"], ["y"], name="mm"),
             helper.make_node("Quant", ["y", "s2", "z", "b"], ["yq"], name="qy", **q)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("yq", TensorProto.FLOAT, [1, 3])], inits)
    model = cleanup_model(ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])))
    out = tmp_path_factory.mktemp("hls") / "prj"
    cfg = hls4ml.utils.config.config_from_onnx_model(model, granularity="name", backend="Vitis")
    hls4ml.converters.convert_from_onnx_model(model, output_dir=str(out), backend="Vitis", io_type="io_parallel",
                                              hls_config=cfg, part="xcvu13p-flga2577-2-e",
                                              clock_period=2.7778).write()
    return out


def test_project_settings_from_hls4ml(hls_project):
    s = vendor.project_settings(hls_project)
    assert s["project_name"] == "myproject" and s["part"] == "xcvu13p-flga2577-2-e"
    assert float(s["clock_period"]) == pytest.approx(2.7778)


def test_missing_tools_exit_nonzero_with_reason(hls_project, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no vendor tool
    assert main(["build", str(hls_project), "--synth"]) == 1
    assert "vitis_hls" in capsys.readouterr().err
    assert main(["build", str(hls_project), "--vsynth"]) == 1
    assert "vivado" in capsys.readouterr().err
    with pytest.raises(ToolNotFoundError):
        vendor.build(hls_project, ["csim"])
    assert not (hls_project / "logs").exists()  # nothing ran


def test_bad_requests(hls_project, tmp_path):
    with pytest.raises(ConfigError, match="no build step"):
        vendor.build(hls_project, [])
    with pytest.raises(ConfigError, match="unknown build step"):
        vendor.build(hls_project, ["bitstream"])
    with pytest.raises(ConfigError, match="project.tcl"):
        vendor.build(tmp_path, ["csim"])


def test_tcl_scripts_exist_and_are_complete_tcl():
    for st in vendor.STEPS.values():
        text = (vendor.tcl_dir() / st.script).read_text()
        assert "L1T_" in text or "l1t_open" in text
        if shutil.which("tclsh"):
            import subprocess

            r = subprocess.run(["tclsh"], input=f"puts [info complete {{{text}}}]", capture_output=True, text=True)
            assert r.stdout.strip() == "1", st.script


def test_run_logged_checks_exit_code_and_logs(tmp_path):
    log = tmp_path / "logs" / "x.log"
    rc = vendor.run_logged([sys.executable, "-c", "import sys; print('hello'); sys.exit(3)"], log, cwd=tmp_path)
    assert rc == 3 and "hello" in log.read_text()


def test_collect_reports_writes_json(tmp_path):
    prj = tmp_path / "prj"
    rdir = prj / "myproject_prj" / "solution1" / "syn" / "report"
    rdir.mkdir(parents=True)
    shutil.copy(REPORTS / "myproject_csynth.rpt", rdir / "myproject_csynth.rpt")
    (prj / "vivado").mkdir()
    shutil.copy(REPORTS / "vivado_utilization.rpt", prj / "vivado" / "utilization.rpt")
    shutil.copy(REPORTS / "vivado_timing_summary.rpt", prj / "vivado" / "timing_summary.rpt")
    out = vendor.collect_reports(prj, "myproject")
    assert set(out) == {"vitis_hls", "vivado"}
    viv = json.loads((prj / "reports" / "vivado.json").read_text())
    assert viv["source"] == "vivado" and viv["resources"]["lut"]["used"] == 21873 and viv["wns_ns"] == 0.412


@pytest.mark.vendor
@pytest.mark.slow
@pytest.mark.skipif(not HAVE_HLS, reason="vitis_hls / vitis-run not on the PATH")
def test_real_vitis_csim_and_synth(hls_project):
    reports = vendor.build(hls_project, ["csim", "synth"])
    assert (hls_project / "logs" / "synth.log").is_file()
    r = reports["vitis_hls"]
    assert r["latency_worst_cycles"] >= 0 and r["ii_max"] >= 1 and r["resources"]["lut"]["used"] > 0


@pytest.mark.vendor
@pytest.mark.slow
@pytest.mark.skipif(not (HAVE_HLS and shutil.which("vivado")), reason="vitis_hls and vivado not both on the PATH")
def test_real_vivado_ooc(hls_project):
    reports = vendor.build(hls_project, ["synth", "vsynth"])
    assert reports["vivado"]["wns_ns"] is not None and reports["vivado"]["resources"]["lut"]["used"] > 0
