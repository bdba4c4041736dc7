"""The one stored C-simulation result: written by ``l1tagger csim`` and the pipeline's csim step, read by
``l1tagger report``. One file, at one place inside the HLS project it describes:

    PROJECT/csim/result.json
      format               "l1tagger-csim-result-1" (the version of this schema)
      project              the project directory simulated
      bit_exact            every traced layer and every output equal to the QONNX reference, bit for bit
      n_jets               test-bench jets simulated
      n_output_values      output values compared (n_jets x outputs)
      mismatching_values   output values that differ
      mismatching_jets     jets with at least one differing output value
      first_mismatch       null, or the first differing layer in graph order: {layer, class, onnx_tensor, n_values,
                           n_jets, first_jet, max_abs_diff}
      first_mismatch_layer null, or that layer's hls4ml name
      layers_compared      traced layers compared with the reference
      layer_mismatches     {layer: differing values} for the layers that differ
      prediction_agreement fraction of jets whose argmax class equals the reference's
      compile_seconds, csim_seconds, jets_per_second
      firmware             where the compiled firmware came from ("regenerated from model.onnx" or "as written on disk")

    record = CsimRecord.from_csim(run_csim(project))
    write(record, project)          # atomically
    read(project)                   # CsimRecord, or None when the project has no result

Converting a project (``l1tagger convert`` / the pipeline) writes a new project directory, so a result never
outlives the project it was computed on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from l1tagger.errors import ConfigError
from l1tagger.utils.atomic import atomic_write_json
from l1tagger.utils.dataclass_io import from_dict

FORMAT = "l1tagger-csim-result-1"

#: inside the project
RESULT_PATH = Path("csim") / "result.json"


@dataclass(frozen=True)
class CsimRecord:
    """What a C simulation proved (see the module docstring for every field)."""

    project: str
    bit_exact: bool
    n_jets: int
    n_output_values: int
    mismatching_values: int
    mismatching_jets: int
    first_mismatch: dict | None
    layers_compared: int
    first_mismatch_layer: str | None = None
    layer_mismatches: dict = field(default_factory=dict)
    prediction_agreement: float = 1.0
    compile_seconds: float = 0.0
    csim_seconds: float = 0.0
    jets_per_second: float = 0.0
    firmware: str = ""
    format: str = FORMAT

    @classmethod
    def from_csim(cls, result) -> "CsimRecord":
        """The record of a :class:`l1tagger.verify.csim.CsimResult` (``run_csim``'s return value)."""
        return cls(
            project=str(result.project), bit_exact=bool(result.bit_exact), n_jets=int(result.n_jets),
            n_output_values=int(result.n_output_values), mismatching_values=int(result.mismatching_values),
            mismatching_jets=int(result.mismatching_jets), first_mismatch=result.first_mismatch,
            layers_compared=int(result.layers_compared), first_mismatch_layer=result.first_mismatch_layer,
            layer_mismatches=dict(result.layer_mismatches),
            prediction_agreement=float(result.prediction_agreement), compile_seconds=float(result.compile_seconds),
            csim_seconds=float(result.csim_seconds), jets_per_second=float(result.jets_per_second),
            firmware=str(result.firmware),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line: ``bit-exact on 20 jets (5 layers traced)`` or what differs first."""
        if self.bit_exact:
            return f"bit-exact on {self.n_jets} jets ({self.layers_compared} layers traced)"
        fm = self.first_mismatch or {}
        layer = self.first_mismatch_layer or fm.get("layer")
        where = f"; first differing layer {layer} ({fm.get('onnx_tensor')})" if layer else ""
        return (f"NOT bit-exact: {self.mismatching_values} of {self.n_output_values} output values differ in "
                f"{self.mismatching_jets} of {self.n_jets} jets{where}")


def result_path(project) -> Path:
    return Path(project) / RESULT_PATH


def write(record: CsimRecord, project) -> Path:
    """Write ``record`` to ``PROJECT/csim/result.json`` (atomically); returns the path."""
    return atomic_write_json(result_path(project), record.to_dict())


def read(project) -> CsimRecord | None:
    """The C-simulation result stored in ``project``, None when there is none.

    ConfigError naming the file when it is not valid JSON, was written in another format version, or has a
    missing / unknown / mistyped field.
    """
    path = result_path(project)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object (a C-simulation result)")
    if data.get("format") != FORMAT:
        raise ConfigError(f"{path}: C-simulation result format {data.get('format')!r}, expected {FORMAT!r}; rerun "
                          f"`l1tagger csim {project}`")
    try:
        return from_dict(CsimRecord, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
