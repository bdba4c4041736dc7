"""The QAT stage's artifact, written by ``l1tagger quantize`` and the pipeline's qat step alike, and the graph
inputs (test-bench feed) of jets for a quantized model.

    save_qat_artifacts(result, out_dir, qat_config, val_jets, export=True, check_jets=1000,
                       word_jets=None) -> manifest dict

writes into ``out_dir`` (one folder per recipe):

    recipe.yaml     copy of the recipe file read
    qat.pt          quantized weights + recipe + model config + feature scaling (torch.load weights_only)
    metrics.json    float vs post-training-quantized vs QAT metrics on the validation jets, training history
    manifest.json   the provenance record (below), sha256 of every file; with ``export`` also the graph inputs and
                    their fixed-point grids, softmax specs with table digests and the bit-exactness cross-check
                    (Brevitas = QONNX reference = integer emulation) on up to ``check_jets`` validation jets
    model.onnx      (``export``) the cleaned QONNX graph

A model on L1 particle words (``ModelConfig.inputs == "l1words"``, docs/l1_inputs.md) is exported with the one
graph input ``words``; its manifest also holds ``l1_words``: the on-chip feature spec (with the word format) and
its table digest, and per jet set (``validation`` = ``val_jets``, plus any of ``word_jets``, e.g. ``train``, ``test``)
what the float -> word conversion saturated (``WordConversion.summary()``: counts and fractions per field).

Provenance (``provenance(result, qat_config)``): the source float checkpoint and its sha256 (declared on
``QATResult.source_checkpoint``), the recipe name, file and sha256, and the QAT settings; ``read_provenance`` reads
it back for the HLS project's manifest. A cross-check that is not bit-exact raises NotBitExactError after the
manifest (the evidence) is written.

    load_qat_tagger(qat.pt) -> LoadedTagger (model, train config, scaler, class names, recipe, softmax specs)
    testbench_feed(tagger, jets, n_jets=None) -> {graph input: array}

``testbench_feed`` is the one way jets become graph inputs of a quantized model (its own feature scaler): the export
cross-check, ``l1tagger convert --data``, the pipeline's test bench and ``l1tagger interpret --from-project`` all
use it.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np

from l1tagger.errors import ConfigError, NotBitExactError
from l1tagger.qat.finetune import load_qat_tagger  # noqa: F401  (re-exported: the stage's loader)
from l1tagger.training.artifact import LoadedTagger
from l1tagger.utils.atomic import atomic_path, atomic_torch_save, atomic_write_json
from l1tagger.utils.hashing import sha256_file

MANIFEST_FORMAT = "l1tagger-qat-artifact-1"


def testbench_feed(tagger: LoadedTagger, jets, n_jets: int | None = None) -> dict[str, np.ndarray]:
    """The exported graph's inputs (``x``, ``mask``, ``pair``; ``words`` for a model on L1 words) for ``jets``, built
    with the ``tagger``'s config and feature scaler; ``n_jets``: only the first ``n_jets`` of ``jets`` (the caller
    chose the order)."""
    if n_jets is not None:
        jets = jets.subset(np.arange(min(len(jets), n_jets)))
    return tagger.inputs(jets).graph_feed()


def provenance(result, qat_config) -> dict:
    """Where a QAT model came from: source checkpoint (+ sha256), recipe (name, file, sha256), QAT settings."""
    src = result.source_checkpoint
    recipe = result.recipe
    return {
        "source_checkpoint": str(src) if src is not None else None,
        "source_checkpoint_sha256": sha256_file(src) if src is not None and Path(src).is_file() else None,
        "recipe": recipe.name,
        "recipe_file": recipe.source,
        "recipe_sha256": sha256_file(recipe.source) if recipe.source else None,
        "qat_config": dataclasses.asdict(qat_config),
    }


#: the manifest's provenance fields, carried on into the HLS project's manifest by ``convert``
PROVENANCE_KEYS = ("source_checkpoint", "source_checkpoint_sha256", "recipe", "recipe_sha256")


def read_provenance(manifest_path) -> dict:
    """The provenance fields of a QAT artifact's manifest.json (ConfigError naming the file when it is unreadable)."""
    import json

    path = Path(manifest_path)
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: corrupt QAT manifest ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a QAT manifest (top level is not a mapping)")
    return {"export_manifest": str(path), **{k: data.get(k) for k in PROVENANCE_KEYS}}


def l1_words_record(tagger: LoadedTagger, jet_sets: dict) -> dict | None:
    """The manifest's ``l1_words`` entry of a model on L1 words (None for a model on features): the on-chip feature
    spec (word format included), its table digest and, per named jet set, what the float -> word conversion
    saturated (``WordConversion.summary()``)."""
    cfg = tagger.model_config
    if cfg.inputs != "l1words":
        return None
    spec = cfg.chip_spec  # the spec the chip computes (pairs: upper for the symmetric designs)
    return {"spec": spec.to_dict(), "table_digest": spec.table_digest(),
            "conversion": {name: tagger.inputs(jets).word_conversion for name, jets in jet_sets.items()
                           if jets is not None}}


def save_qat_artifacts(result, out_dir, qat_config, val_jets=None, export: bool = True,
                       check_jets: int = 1000, word_jets: dict | None = None) -> dict:
    """Write the QAT artifact of ``result`` (a ``QATResult``) into ``out_dir``; returns the manifest written.

    val_jets: the jets of the export cross-check (required with ``export``). Raises NotBitExactError (naming the
    first differing tensor) when the exported graph is not bit-exact with the Brevitas model.
    word_jets: for a model on L1 words, further named jet sets ({"train": ..., "test": ...}) whose word-conversion
    clipping the manifest records beside the validation jets' (``l1_words.conversion``).
    """
    from l1tagger.qat.finetune import qat_checkpoint

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if export and val_jets is None:
        raise ConfigError("save_qat_artifacts: export needs the validation jets of the cross-check")
    if export and check_jets < 1:
        raise ConfigError(f"check_jets: must be >= 1, got {check_jets}")
    recipe = result.recipe
    if not recipe.source:
        raise ConfigError(f"recipe {recipe.name!r}: no recipe file to copy (load it with load_recipe)")
    with atomic_path(out / "recipe.yaml") as tmp:
        shutil.copyfile(recipe.source, tmp)  # the file read (a preset name resolves to one)
    atomic_torch_save(out / "qat.pt", qat_checkpoint(result, qat_config))
    atomic_write_json(out / "metrics.json", result.summary())
    manifest = {"format": MANIFEST_FORMAT, **provenance(result, qat_config)}
    words = l1_words_record(result.tagger, {"validation": val_jets, **(word_jets or {})})
    if words is not None:
        manifest["l1_words"] = words
    files = ["qat.pt", "recipe.yaml", "metrics.json"]
    if export:
        manifest.update(_export(result, out, val_jets, check_jets))
        files.append("model.onnx")
    manifest["files"] = {name: {"sha256": sha256_file(out / name)} for name in files}
    atomic_write_json(out / "manifest.json", manifest)
    cc = manifest.get("crosscheck")
    if cc is not None and not cc["bit_exact"]:
        raise NotBitExactError(f"{out / 'model.onnx'}: the exported QONNX graph is not bit-exact with the Brevitas "
                                f"model on {cc['n_jets']} jets; first mismatch: {cc['first_mismatch']} (see "
                                f"{out / 'manifest.json'})")
    return manifest


def _export(result, out: Path, val_jets, check_jets: int) -> dict:
    """Export the QAT model to ``out/model.onnx`` and cross-check it; the manifest's export fields."""
    import torch

    from l1tagger.export.crosscheck import crosscheck
    from l1tagger.export.export import export_qonnx_model
    from l1tagger.qat.softmax import SoftmaxSpec

    tagger = result.tagger
    tagger.model.eval()
    model = tagger.model
    feed = testbench_feed(tagger, val_jets, check_jets)
    example = tuple(torch.as_tensor(v[:1]) for v in feed.values())
    # the graph inputs are named as the feed: x, mask[, pair], or words for a model on L1 words
    wrapper = export_qonnx_model(model, example, out / "model.onnx", input_names=tuple(feed))
    check = crosscheck(model, wrapper, feed)
    rq = result.recipe
    if tagger.model_config.inputs == "l1words":
        fmt = tagger.model_config.l1_spec.format
        grid = {"bits": fmt.word_bits, "frac": 0, "signed": True,
                "note": f"integer L1 particle words (format {fmt.name!r}, fields {[f.name for f in fmt.fields]}) "
                        f"on the unit grid; x, the mask and pair are computed from them on chip"}
    else:
        grid = {"bits": rq.kinds["input"].bits, "frac": rq.kinds["input"].frac, "signed": True,
                "note": "x and pair are standardised with the checkpoint's feature scaler, then quantized to this "
                        "grid by the graph's first Quant nodes"}
    return {
        "inputs": {
            vi.name: {"shape": [d.dim_value for d in vi.type.tensor_type.shape.dim]}
            for vi in wrapper.graph.input if wrapper.get_initializer(vi.name) is None
        },
        "input_grid": grid,
        "outputs": [o.name for o in wrapper.graph.output],
        "class_names": list(tagger.class_names),
        "softmax": {name: {"spec": d, "table_digest": SoftmaxSpec.from_dict(d, f"softmax.{name}").table_digest()}
                    for name, d in tagger.softmax_specs.items()},
        "crosscheck": check.to_dict(),
        "ops": sorted({n.op_type for n in wrapper.graph.node}),
        "n_nodes": len(wrapper.graph.node),
    }
