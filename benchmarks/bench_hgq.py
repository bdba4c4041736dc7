"""Heterogeneous, resource-aware QAT (HGQ) against uniform int8: accuracy vs cost for every attention kind.

Run by hand (the full setting is hours on 2 CPUs: 16 and 32 particles x 3 kinds x 4 recipes on >= 20k jets per
class):

    python benchmarks/bench_hgq.py                                   # the issue's setting
    python benchmarks/bench_hgq.py --n-per-class 300 --epochs 1 --qat-epochs 1 --n-particles 16 \\
        --kinds full --targets 2e5 --out /tmp/hgq_smoke              # a smoke run (minutes)

For each particle count N (--n-particles, default 16 and 32) and attention kind (--kinds: full+U, Linformer k = 4,
top-k k = 4), one ``l1tagger run`` per recipe on Pythia 8 + FastJet jets of the hls4ml class set (g, q, W, Z, t)
with the three 'l1' features: the uniform ``int8_floor`` recipe, then ``hgq_budget`` (or --hgq-recipe) at each EBOPs target of
--targets (``qat.target_ebops``; ``budget`` = derived from the budget, docs/cost.md). The recipes of one (N, kind)
share its run directory, so the float model is trained once and each recipe reruns QAT onwards. Every run goes
through the whole chain: QAT, QONNX export cross-checked bit for bit, hls4ml C simulation bit for bit on the
test-bench jets, and (--rtl verilog, the default) the open RTL route's da4ml logic checked bit for bit by da4ml's C++
interpreter. Every row says whether the model fits the budget (``fits_budget``: the report's budget verdict; an
HGQ run that does not fit ends with BudgetNotReachedError after its report is written, and is recorded all the
same).

Per row: accuracy (float, QAT on the test split, firmware on the test-bench jets), exact EBOPs of the kept QAT epoch
(HGQ) / of the uniform model, da4ml's cost of the graph (LUT, its cost model), the estimate's LUT / DSP / latency
(``l1tagger.report.estimates``), the bit-exact verdicts, and the issue's targets: HGQ within 1 point of the int8
model's accuracy at <= 1/5 of its da4ml cost, and da4ml cost <= 246k (N = 16) / 267k (N = 32) LUT, the published
HGQ2 Linformer's. Results: <--out>/hgq.{json,md,png} (Pareto plot: accuracy vs da4ml cost, JSON beside it). A rerun
with the same full config replaces its row (and says so); every row records the command, commit and versions
(``l1tagger.utils.provenance``). Runs, projects and jets go under --work (kept: a rerun resumes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from l1tagger.pipeline.config import DERIVED, load_run_config
from l1tagger.errors import L1TaggerError
from l1tagger.pipeline.run import BudgetNotReachedError, run_pipeline
from l1tagger.report.figures import figures, run_figures
from l1tagger.utils.atomic import atomic_write_json, atomic_write_text
from l1tagger.utils.dataclass_io import to_dict
from l1tagger.utils.provenance import add_rows, config_key, provenance

RESULTS = Path(__file__).parent / "results"
KINDS = ("full", "linformer", "topk")
#: the HGQ recipes the targets may use (quantize/<name>.yaml)
HGQ_RECIPES = ("hgq_budget", "hgq_lean")
#: the published HGQ2+da4ml Linformer's LUT per particle count (../shared/REFERENCE.md, arXiv:2510.24784 Table 1)
ANCHOR_LUT = {16: 246_000, 32: 267_000}
#: where the run config's own paths go: not part of a row's config
WHERE = ("name", "runs_dir", "projects_dir", "data_dir")


def _target(text: str) -> str | float:
    return text if text == "budget" else float(text)


def run_one(a, n: int, kind: str, recipe: str, target, work: Path) -> dict:
    """One ``l1tagger run`` of (N, kind, recipe, target); returns the row."""
    qat = {"epochs": a.qat_epochs, "batch_size": a.qat_batch_size,
           **({"target_ebops": target} if isinstance(target, float) else {})}
    cfg = load_run_config(
        None, name=f"hgq_n{n}_{kind}_{a.n_per_class}jpc_s{a.seed}", runs_dir=str(work / "runs"),
        projects_dir=str(work / "hls"), data_dir=str(work / "data"), class_set="hls4ml5",
        n_per_class=a.n_per_class, seed=a.seed, n_csim_jets=a.n_csim_jets, rtl=a.rtl,
        model={"n_particles": n, "features": "l1", "attention": kind, "linformer_k": 4, "topk_k": 4,
               "pair_bias": True, "d_model": a.d_model, "n_heads": 2, "ffn_dim": 2 * a.d_model,
               "embed_dim": 2 * a.d_model, "head_dim": 2 * a.d_model, "pair_hidden": 8},
        train={"epochs": a.epochs}, qat=qat,
        recipe=str(Path(__file__).resolve().parents[1] / "quantize" / f"{recipe}.yaml"),
    )
    config = {k: v for k, v in to_dict(cfg, fixed=DERIVED).items() if k not in WHERE}
    config["recipe"] = recipe
    t0, started = time.perf_counter(), time.time()
    error = None
    try:
        run_pipeline(cfg, log=print)
    except BudgetNotReachedError as exc:  # the report is written: record the row
        print(f"  (does not fit the budget: {exc})")
    except L1TaggerError as exc:  # a failed point is a result too (the sweep goes on); its report is not current
        error = f"{type(exc).__name__}: {exc}"
        print(f"  (failed: {error})")
    wall = time.perf_counter() - t0
    return {
        "n_particles": n, "attention": kind, "interaction": cfg.model.interaction, "recipe": recipe,
        **(run_figures(cfg.run_dir) if error is None else failed_figures(cfg.run_dir, started)), "error": error,
        "wall_s": round(wall, 1),
        "host": {"cpus": os.cpu_count(), "machine": platform.machine()},
        "config": config, "config_key": config_key(config), "provenance": provenance(),
    }


#: the run-config fields the float model depends on: rows sharing them compare HGQ and int8 on one float model
FLOAT_FIELDS = ("model", "train", "class_set", "dataset", "n_per_class", "seed")


def interaction(r: dict) -> str:
    """The row's interaction design (rows from before the field existed used the per-pair MLP)."""
    return r.get("interaction") or r["config"]["model"].get("interaction", "mlp")


def failed_figures(run_dir: Path, started: float) -> dict:
    """What a point that failed after its QAT step still tells (the QAT accuracy on the test split and the kept
    EBOPs, from files this run wrote after ``started``); the rest None. A report.json left by an earlier point in
    the same run directory is never read."""
    def fresh(path: Path) -> dict:
        return json.loads(path.read_text()) if path.is_file() and path.stat().st_mtime >= started else {}

    fig = figures({}, fresh(run_dir / "qat" / "metrics.json"))
    fig["accuracy_qat"] = fresh(run_dir / "metrics" / "qat.json").get("accuracy")
    return fig


def collapsed(r: dict) -> bool:
    """A model at chance accuracy (``l1tagger.qat.hgq.collapse_warning``): cheap, but no tagger; never counted as
    meeting a cost target."""
    from l1tagger.data.classes import get_class_set
    from l1tagger.qat.hgq import collapse_warning

    acc = r.get("accuracy_qat")
    n = len(get_class_set(r["config"]["class_set"]).classes)
    return acc is not None and collapse_warning(acc, n, r.get("target_ebops") or 0.0) is not None


def targets_met(rows: list[dict]) -> list[dict]:
    """Per float model (N, kind, interaction, training: ``FLOAT_FIELDS``): the best HGQ row within 1 point of the
    int8 row of the same float model at <= 1/5 of its da4ml cost, and the cheapest HGQ row's da4ml cost against the
    anchor."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        key = config_key({k: r["config"].get(k) for k in FLOAT_FIELDS})
        groups.setdefault(key, []).append(r)
    out = []
    for key, sel in sorted(groups.items(), key=lambda kv: (kv[1][0]["n_particles"], kv[1][0]["attention"])):
        n, kind = sel[0]["n_particles"], sel[0]["attention"]
        base = next((r for r in reversed(sel) if r["recipe"] == "int8_floor"), None)
        hgq = [r for r in sel if r["recipe"] != "int8_floor" and r.get("da4ml_lut") and not collapsed(r)]
        ok = [r for r in hgq if base and base.get("da4ml_lut") and r["accuracy_qat"] is not None
              and r["accuracy_qat"] >= base["accuracy_qat"] - 0.01 and r["da4ml_lut"] <= base["da4ml_lut"] / 5]
        cheapest = min(hgq, key=lambda r: r["da4ml_lut"]) if hgq else None
        out.append({"n_particles": n, "attention": kind, "interaction": interaction(sel[0]),
                    "float_accuracy": sel[0].get("accuracy_float"), "float_key": key,
                    "int8_accuracy": base["accuracy_qat"] if base else None,
                    "int8_da4ml_lut": base.get("da4ml_lut") if base else None,
                    "within_1pt_at_1_5_cost": bool(ok),
                    "best_such": max(ok, key=lambda r: r["accuracy_qat"])["config_key"] if ok else None,
                    "cheapest_hgq_da4ml_lut": cheapest["da4ml_lut"] if cheapest else None,
                    "cheapest_hgq_accuracy": cheapest["accuracy_qat"] if cheapest else None,
                    "anchor_lut": ANCHOR_LUT.get(n),
                    "at_or_below_anchor": bool(cheapest and ANCHOR_LUT.get(n)
                                               and cheapest["da4ml_lut"] <= ANCHOR_LUT[n])})
    return out


def plot(rows: list[dict], png: Path) -> dict | None:
    """Accuracy (QAT, test split) vs da4ml cost, one colour per kind, one marker per N; Pareto front per N."""
    from l1tagger.report.plots import pareto_front

    pts = [{"name": f"N{r['n_particles']} {r['attention']} {r['recipe']}"
                    + (f" {r['target_ebops']:.3g}" if r.get("target_ebops") else ""),
            "accuracy": r["accuracy_qat"], "cost": r["da4ml_lut"], "attention": r["attention"],
            "n_particles": r["n_particles"], "recipe": r["recipe"]}
           for r in rows if r.get("da4ml_lut") and r.get("accuracy_qat") is not None]
    if not pts:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    markers = {16: "o", 32: "s"}
    for i, kind in enumerate(KINDS):
        for n, mk in markers.items():
            sel = [p for p in pts if p["attention"] == kind and p["n_particles"] == n]
            if sel:
                ax.scatter([p["cost"] for p in sel], [p["accuracy"] for p in sel], color=f"C{i}", marker=mk,
                           facecolors=["none" if p["recipe"] == "int8_floor" else f"C{i}" for p in sel],
                           label=f"{kind}, N={n}")
    fronts = {}
    for n in sorted({p["n_particles"] for p in pts}):
        fr = sorted(pareto_front([p for p in pts if p["n_particles"] == n]), key=lambda p: p["cost"])
        fronts[n] = [p["name"] for p in fr]
        ax.step([p["cost"] for p in fr], [p["accuracy"] for p in fr], where="post", lw=0.8, color="k",
                ls="-" if n == 16 else "--", label=f"Pareto front N={n}")
    for n, lut in ANCHOR_LUT.items():
        ax.axvline(lut, color="grey", lw=0.6, ls=":" if n == 16 else "-.")
    ax.set_xscale("log")
    ax.set_xlabel("da4ml cost of the graph (LUT); open markers: uniform int8, dotted lines: HGQ2 Linformer LUT")
    ax.set_ylabel("accuracy (QAT = firmware arithmetic, test split)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    plt.close(fig)
    data = {"points": pts, "front": fronts}
    atomic_write_json(png.with_suffix(".plot.json"), data)
    return data


def markdown(rows: list[dict], met: list[dict]) -> str:
    lines = ["# HGQ vs uniform int8: accuracy vs cost (benchmarks/bench_hgq.py)", "",
             "Regenerate: `python benchmarks/bench_hgq.py` (each row: its own command and commit in hgq.json). "
             "Pythia 8 + FastJet hls4ml-class jets, 'l1' features (3 per particle), one block, 2 heads, d as in "
             "the row (default 16; widths 2d), pair bias U, Linformer / top-k k = 4. Accuracy: QAT model on the whole test split (the firmware's arithmetic: C simulation and "
             "RTL are bit-exact to it on the jets named). EBOPs: exact, of the kept QAT epoch (HGQ) or the estimate's "
             "(int8). da4ml LUT: da4ml's cost model of the same graph; est.: l1tagger's estimate of the HLS project.",
             "", "| N | kind | recipe | target (source) | jets/class | accuracy float / QAT / firmware | EBOPs | "
             "da4ml LUT | est. LUT | est. DSP | latency (est.) | bit-exact C-sim / RTL | fits budget | commit |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def f(v, d=4):
        return "—" if v is None else (f"{v:.{d}f}" if isinstance(v, float) and v < 10 else f"{v:,.0f}")

    for r in sorted(rows, key=lambda r: (r["n_particles"], KINDS.index(r["attention"]), -(r["target_ebops"] or 1e12))):
        commit = ((r.get("provenance") or {}).get("commit") or "—")[:10]
        tgt = "—" if not r.get("target_ebops") else f"{r['target_ebops']:,.0f} ({r.get('target_source')})"
        lines.append(
            f"| {r['n_particles']} | {r['attention']} d{r['config']['model']['d_model']} {interaction(r)} | {r['recipe']} | {tgt} | "
            f"{r['config']['n_per_class']} | "
            f"{f(r['accuracy_float'])} / {f(r['accuracy_qat'])} / {f(r['accuracy_firmware_tb'])} | "
            f"{f(r['ebops'])} | {f(r['da4ml_lut']) if r.get('da4ml_lut') else r.get('da4ml_reason') or '—'} | "
            f"{f(r['est_lut'])} | {f(r['est_dsp'], 0)} | {f(r['latency_ns'])} ns | "
            + (f"**failed**: {r['error'][:160]} | " if r.get("error") else
               f"{r['csim_bit_exact']} ({r['csim_jets']}) / {r['rtl_bit_exact']} ({r['rtl_jets']}), **collapsed** "
               f"(chance accuracy) | " if collapsed(r) else
               f"{r['csim_bit_exact']} ({r['csim_jets']}) / {r['rtl_bit_exact']} ({r['rtl_jets']}) | ")
            + f"{r['fits_budget']} | {commit} |")
    lines += ["", "## The issue's targets", "",
              "Per float model (the same N, kind, interaction and float training: the int8 row and the HGQ rows "
              "fine-tune one checkpoint).", "",
              "| N | kind | float accuracy | int8 accuracy | int8 da4ml LUT | HGQ within 1 point at <= 1/5 of its "
              "cost | cheapest HGQ da4ml LUT (accuracy) | HGQ2 Linformer LUT | at or below it |",
              "|---|---|---|---|---|---|---|---|---|"]
    for m in met:
        lines.append(f"| {m['n_particles']} | {m['attention']} {m['interaction']} | {f(m['float_accuracy'])} | "
                     f"{f(m['int8_accuracy'])} | {f(m['int8_da4ml_lut'])} | "
                     f"{'yes' if m['within_1pt_at_1_5_cost'] else 'NO'} | {f(m['cheapest_hgq_da4ml_lut'])} "
                     f"({f(m.get('cheapest_hgq_accuracy'))}) | "
                     f"{f(m['anchor_lut'])} | {'yes' if m['at_or_below_anchor'] else 'NO'} |")
    lines += ["", "![accuracy vs da4ml cost](hgq.png)", "numbers: `hgq.plot.json`"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-particles", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    ap.add_argument("--targets", type=_target, nargs="*", default=[4e5, 2e5, 1e5],
                    help="EBOPs targets of the HGQ runs (qat.target_ebops), or 'budget'; none: only the int8 "
                         "baseline (default: %(default)s)")
    ap.add_argument("--n-per-class", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=30, help="float training epochs")
    ap.add_argument("--qat-epochs", type=int, default=20)
    ap.add_argument("--qat-batch-size", type=int, default=512,
                    help="QAT batch size (HGQ steps are costly: larger batches, fewer steps; default %(default)s)")
    ap.add_argument("--d-model", type=int, default=16, help="d (ffn, embedding and head widths 2d, 2 heads)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n-csim-jets", type=int, default=1000)
    ap.add_argument("--rtl", choices=("off", "verilog", "cosim"), default="verilog",
                    help="the open RTL route per run (verilog: da4ml logic checked by its C++ interpreter)")
    ap.add_argument("--no-int8", action="store_true", help="skip the uniform int8_floor baseline")
    ap.add_argument("--hgq-recipe", choices=HGQ_RECIPES, default="hgq_budget",
                    help="the HGQ recipe of the targets (hgq_lean: hgq_budget with the leaner softmax; default "
                         "%(default)s)")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "l1tagger-bench" / "hgq"))
    ap.add_argument("--out", default=str(RESULTS), help="where hgq.json / .md / .png go (default %(default)s)")
    a = ap.parse_args(argv)
    out, work = Path(a.out), Path(a.work)
    recipes = ([] if a.no_int8 else [("int8_floor", None)]) + [(a.hgq_recipe, t) for t in a.targets]
    if not recipes:
        ap.error("nothing to run: --no-int8 and no --targets")
    for n in a.n_particles:
        for kind in a.kinds:
            for recipe, target in recipes:
                print(f"== N={n} {kind} {recipe} {target or ''}", flush=True)
                row = run_one(a, n, kind, recipe, target, work)
                rows = add_rows(out / "hgq.json", [row])
                met = targets_met(rows)
                atomic_write_json(out / "hgq.json", {"benchmark": "hgq", "anchor_lut": ANCHOR_LUT, "rows": rows,
                                                     "targets": met})
                plot(rows, out / "hgq.png")
                atomic_write_text(out / "hgq.md", markdown(rows, met))
    print((out / "hgq.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
