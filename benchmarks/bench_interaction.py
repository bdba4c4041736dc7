"""The interaction bias U at hardware cost (issue 15 item 3): accuracy vs cost of each design of ``model.interaction``.

Run by hand (the full setting is many hours on 2 CPUs: 2 particle counts x 2 input modes x 5 designs x 2 recipes, each
a whole ``l1tagger run`` on >= 20k jets per class):

    python benchmarks/bench_interaction.py                                  # the issue's setting
    python benchmarks/bench_interaction.py --n-per-class 300 --epochs 1 --qat-epochs 1 --n-particles 16 \\
        --inputs l1words --designs none table --recipes int8_floor --out /tmp/ia_smoke   # a smoke run (minutes)

For each particle count N (--n-particles, default 16 and 32), input mode (--inputs: ``features`` = U from pair
features computed off chip in float, today's; ``l1words`` = L1 particle words in, pair features and U on chip) and
design (--designs: ``none`` = no U, ``mlp`` = ParT's per-pair MLP, ``mlp_sym`` = the MLP over the unique pairs,
``table`` / ``table_sym`` = U from per-feature tables of the quantized pair features, docs/interaction.md), and for
the MLP designs each pair MLP width of --pair-hidden (item 4: narrower pair embeddings), one ``l1tagger run`` per
recipe (--recipes: ``int8_floor`` and ``hgq_budget``, the resource-aware recipe, EBOPs target from the budget) on
Pythia 8 + FastJet jets of the hls4ml class set (g, q, W, Z, t). The recipes of one model share its run directory
(the float model is trained once; each recipe reruns QAT onwards). Every run goes through the whole chain: QAT, QONNX
export cross-checked bit for bit, hls4ml C simulation bit for bit on the test-bench jets, the open RTL route's da4ml
logic checked by da4ml's C++ interpreter (--rtl verilog).

Per row: accuracy (float, QAT on the test split, firmware on the test-bench jets), EBOPs (HGQ exact of the kept epoch,
or the estimate's), da4ml's cost of the graph, the estimate's LUT / DSP / latency, the cost per block
(``l1tagger.report.blocks``: particle features, pair features, interaction U, softmax, particle path) and the share of
the whole tagger's cost spent on U with the on-chip pair features included, the bit-exact verdicts and the number of
jets behind each figure. Summary per (N, recipe): for each on-chip design, the U share and the part of the accuracy
U adds (float features MLP vs no U) it keeps; the issue's target at N = 16: share <= 15 % and >= 80 % kept.
Results: <--out>/interaction.{json,md}. A rerun with the same full config replaces its row, another setting adds a
row; every row records the command, commit and versions (``l1tagger.utils.provenance``). Runs, projects and jets go
under --work (kept: a rerun resumes).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from l1tagger.contract.l1features import CODE_PAIR_SETS, PAIR_VARIANTS
from l1tagger.pipeline.config import DERIVED, load_run_config
from l1tagger.pipeline.run import BudgetNotReachedError, run_pipeline
from l1tagger.report.blocks import BLOCKS, da4ml_interaction_share, interaction_share
from l1tagger.report.figures import run_figures
from l1tagger.utils.atomic import atomic_write_json, atomic_write_text
from l1tagger.utils.dataclass_io import to_dict
from l1tagger.utils.provenance import add_rows, config_key, provenance

RESULTS = Path(__file__).parent / "results"
DESIGNS = ("none", "mlp", "mlp_sym", "table", "table_sym")
INPUTS = ("features", "l1words")
RECIPES = ("int8_floor", "hgq_budget")
#: the issue's targets at N = 16: on-chip U (pair features included) <= 15 % of the tagger, >= 80 % of U's gain kept
MAX_SHARE, MIN_KEPT = 0.15, 0.80
#: where the run config's own paths go: not part of a row's config
WHERE = ("name", "runs_dir", "projects_dir", "data_dir")


def model_section(a, n: int, inputs: str, design: str, hidden: int, delta: str = "d2") -> dict:
    m = {"n_particles": n, "attention": a.attention, "linformer_k": 4, "topk_k": 4, "d_model": a.d_model,
         "n_heads": 2, "ffn_dim": 2 * a.d_model, "embed_dim": 2 * a.d_model, "head_dim": 2 * a.d_model,
         "pair_bias": design != "none", "inputs": inputs}
    if inputs == "features":
        m["features"] = "l1"
    if design != "none":
        m.update(interaction=design, pair_hidden=hidden, pair_table_bits=a.table_bits)
    if PAIR_VARIANTS[delta]:  # the on-chip pair-feature variant; d2 (ParT's set, exact squares) is the spec's default
        m["l1features"] = dict(PAIR_VARIANTS[delta])
    return m


def run_one(a, n: int, inputs: str, design: str, hidden: int, recipe: str, work: Path,
            delta: str = "d2") -> dict:
    """One ``l1tagger run``; returns the row."""
    tag = design if design == "none" else (f"{design}_t{a.table_bits}" if design.startswith("table")
                                           else f"{design}_h{hidden}")
    tag += "" if delta == "d2" else f"_{delta}"
    target = a.target_ebops if recipe.startswith("hgq") else None  # HGQ's EBOPs target (default: the budget's)
    tag += "" if target is None else f"_e{target:.0f}"
    cfg = load_run_config(
        None, name=f"ia_n{n}_{a.attention}_{inputs}_{tag}_{a.n_per_class}jpc_s{a.seed}", runs_dir=str(work / "runs"),
        projects_dir=str(work / "hls"), data_dir=str(work / "data"), class_set="hls4ml5",
        n_per_class=a.n_per_class, seed=a.seed, n_csim_jets=a.n_csim_jets, rtl=a.rtl,
        model=model_section(a, n, inputs, design, hidden, delta), train={"epochs": a.epochs},
        qat={"epochs": a.qat_epochs, **({"batch_size": a.qat_batch_size} if a.qat_batch_size else {}),
             **({"target_ebops": target} if target is not None else {})},
        recipe=str(Path(__file__).resolve().parents[1] / "quantize" / f"{recipe}.yaml"),
    )
    config = {k: v for k, v in to_dict(cfg, fixed=DERIVED).items() if k not in WHERE}
    config["recipe"] = recipe
    t0 = time.perf_counter()
    try:
        run_pipeline(cfg, log=print)
    except BudgetNotReachedError as exc:  # the report is written: record the row
        print(f"  (does not fit the budget: {exc})")
    wall = time.perf_counter() - t0
    fig = run_figures(cfg.run_dir)
    return {
        "n_particles": n, "attention": a.attention, "inputs": inputs, "design": design,
        "pair_hidden": hidden if design.startswith("mlp") else None,
        "pair_table_bits": a.table_bits if design.startswith("table") else None, "recipe": recipe,
        "target_ebops": target,
        "delta": delta if inputs == "l1words" and design != "none" else None,
        **fig, "jets": {"per_class": a.n_per_class, **fig["jets"]},
        "u_share": interaction_share(fig["blocks"]) if fig["blocks"] else None,
        "u_share_da4ml": da4ml_interaction_share(fig["da4ml_blocks"]) if fig["da4ml_blocks"] else None,
        "wall_s": round(wall, 1), "host": {"cpus": os.cpu_count(), "machine": platform.machine()},
        "config": config, "config_key": config_key(config), "provenance": provenance(),
    }


def recipe_label(r: dict) -> str:
    """The recipe of a row, with its EBOPs target when the row set one (else the recipe's: the budget's)."""
    t = r.get("target_ebops")
    return r["recipe"] if t is None else f"{r['recipe']} @ {t / 1e3:,.0f}k EBOPs"


def summary(rows: list[dict]) -> list[dict]:
    """Per (N, recipe, attention) and on-chip design: the U share and the part of U's accuracy gain it keeps. Gain of U
    (today) = QAT accuracy of the features MLP (widest pair_hidden) - features without U; kept = (the design on L1
    words - L1 words without U) / that gain; None where a row is missing or the gain is not positive."""
    def acc(sel, inputs, design):
        cand = [r for r in sel if r["inputs"] == inputs and r["design"] == design and r["accuracy_qat"] is not None]
        return max(cand, key=lambda r: r["pair_hidden"] or 0)["accuracy_qat"] if cand else None

    out = []
    for key in sorted({(r["n_particles"], recipe_label(r), r["attention"]) for r in rows}):
        sel = [r for r in rows if (r["n_particles"], recipe_label(r), r["attention"]) == key]
        ref, base_f, base_w = acc(sel, "features", "mlp"), acc(sel, "features", "none"), acc(sel, "l1words", "none")
        gain = ref - base_f if ref is not None and base_f is not None else None
        for r in sel:
            if r["inputs"] != "l1words" or r["design"] == "none":
                continue
            kept = ((r["accuracy_qat"] - base_w) / gain if gain and gain > 0 and base_w is not None
                    and r["accuracy_qat"] is not None else None)
            out.append({"n_particles": key[0], "recipe": key[1], "attention": key[2], "design": r["design"],
                        "pair_hidden": r["pair_hidden"], "pair_table_bits": r["pair_table_bits"],
                        "delta": r.get("delta"), "u_share": r["u_share"], "u_share_da4ml": r.get("u_share_da4ml"),
                        "accuracy_gain_of_u": gain, "kept": kept,
                        "meets_target": (r["u_share"] <= MAX_SHARE and kept >= MIN_KEPT)
                        if key[0] == 16 and kept is not None and r["u_share"] is not None else None,
                        "meets_target_da4ml": (r["u_share_da4ml"] <= MAX_SHARE and kept >= MIN_KEPT)
                        if key[0] == 16 and kept is not None and r.get("u_share_da4ml") is not None else None,
                        "config_key": r["config_key"]})
    return out


def markdown(rows: list[dict], summ: list[dict]) -> str:
    lines = ["# The interaction bias U at hardware cost (benchmarks/bench_interaction.py)", "",
             "Regenerate: `python benchmarks/bench_interaction.py` (each row: its command and commit in "
             "interaction.json). Pythia 8 + FastJet hls4ml-class jets; one block, 2 heads, d and the attention as in "
             "the row. inputs `features`: U from pair features computed off chip in float (today; not deployable); "
             "`l1words`: L1 words in, pair features and U on chip (docs/l1_inputs.md, docs/interaction.md). "
             "Accuracy: QAT model on the test split (C simulation and RTL are bit-exact to it on the jets named). "
             "EBOPs: HGQ exact (kept epoch) or the estimate's; da4ml LUT: da4ml's cost model of the same graph; "
             "est.: l1tagger's estimate. U share: (pair features + interaction U) / whole tagger, estimate's cost "
             "(LUT + 55 DSP), and the same share of da4ml's LUT where the row has da4ml's per-block split "
             "(l1tagger.rtl.attribution); per block in interaction.json.", "",
             "| N | attention | inputs | design | recipe | jets/class | accuracy float / QAT / firmware | EBOPs | "
             "da4ml LUT | est. LUT | est. DSP | latency (est.) | U share (est. / da4ml) | bit-exact C-sim / RTL "
             "(jets) | commit |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def f(v, d=4):
        return "—" if v is None else (f"{v:.{d}f}" if isinstance(v, float) and abs(v) < 10 else f"{v:,.0f}")

    def design(r):
        if r["design"].startswith("mlp"):
            name = f"{r['design']} (hidden {r['pair_hidden']})"
        elif r["design"].startswith("table"):
            name = f"{r['design']} ({r['pair_table_bits']} bit)"
        else:
            return "no U"
        if r.get("delta") in CODE_PAIR_SETS:
            return name + {"words": ", U from the words", "part_codes": ", ParT set in codes"}[r["delta"]]
        return name + (f", angle {r['delta']}" if r.get("delta") not in (None, "d2") else "")

    order = lambda r: (r["n_particles"], recipe_label(r), INPUTS.index(r["inputs"]), DESIGNS.index(r["design"]),  # noqa
                       -(r["pair_hidden"] or 0))
    for r in sorted(rows, key=order):
        commit = ((r.get("provenance") or {}).get("commit") or "—")[:10]
        share = "—" if r.get("u_share") is None else f"{100 * r['u_share']:.1f} %"
        share += "" if r.get("u_share_da4ml") is None else f" / {100 * r['u_share_da4ml']:.1f} %"
        lines.append(
            f"| {r['n_particles']} | {r['attention']} | {r['inputs']} | {design(r)} | {recipe_label(r)} | "
            f"{r['config']['n_per_class']} | {f(r['accuracy_float'])} / {f(r['accuracy_qat'])} / "
            f"{f(r['accuracy_firmware_tb'])} | {f(r['ebops'])} | "
            f"{f(r['da4ml_lut']) if r.get('da4ml_lut') else r.get('da4ml_reason') or '—'} | {f(r['est_lut'])} | "
            f"{f(r['est_dsp'])} | {r['latency_ns']:.0f} ns | {share} | {r['csim_bit_exact']} ({r['csim_jets']}) / "
            f"{r['rtl_bit_exact']} ({r['rtl_jets']}) | {commit} |")
    lines += ["", "## Cost per block (estimate, share of LUT + 55 DSP)", "",
              "| N | inputs | design | recipe | " + " | ".join(BLOCKS) + " |",
              "|---|---|---|---|" + "---|" * len(BLOCKS)]
    for r in sorted(rows, key=order):
        if r.get("blocks"):
            lines.append(f"| {r['n_particles']} | {r['inputs']} | {design(r)} | {recipe_label(r)} | " +
                         " | ".join(f"{100 * r['blocks'][b]['share_cost']:.1f} %" for b in BLOCKS) + " |")
    lines += ["", f"## The issue's target (N = 16: U on chip <= {100 * MAX_SHARE:.0f} % of the tagger, >= "
              f"{100 * MIN_KEPT:.0f} % of U's accuracy gain kept)", "",
              "| N | recipe | design | U share (est. / da4ml) | gain of U (features: MLP - no U) | kept (on chip: "
              "design - no U, over that gain) | meets target (est. / da4ml) |",
              "|---|---|---|---|---|---|---|"]

    def yes(v):
        return "—" if v is None else ("yes" if v else "NO")

    for s in summ:
        share = "—" if s["u_share"] is None else f"{100 * s['u_share']:.1f} %"
        share += "" if s.get("u_share_da4ml") is None else f" / {100 * s['u_share_da4ml']:.1f} %"
        kept = "—" if s["kept"] is None else f"{100 * s['kept']:.0f} %"
        meets = yes(s["meets_target"]) + ("" if s.get("meets_target_da4ml") is None
                                          else f" / {yes(s['meets_target_da4ml'])}")
        lines.append(f"| {s['n_particles']} | {s['recipe']} | {design(s)} | {share} | {f(s['accuracy_gain_of_u'])} | "
                     f"{kept} | {meets} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-particles", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--inputs", nargs="+", choices=INPUTS, default=list(INPUTS))
    ap.add_argument("--designs", nargs="+", choices=DESIGNS, default=list(DESIGNS))
    ap.add_argument("--pair-hidden", type=int, nargs="+", default=[8, 4, 2],
                    help="pair MLP widths of the mlp designs (item 4: narrower pair embeddings; default %(default)s)")
    ap.add_argument("--table-bits", type=int, default=5, help="index bits of the table designs (model.pair_table_bits)")
    ap.add_argument("--recipes", nargs="+", choices=RECIPES, default=list(RECIPES))
    ap.add_argument("--attention", choices=("full", "linformer", "topk"), default="linformer")
    ap.add_argument("--n-per-class", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=30, help="float training epochs")
    ap.add_argument("--qat-epochs", type=int, default=20)
    ap.add_argument("--qat-batch-size", type=int, default=None,
                    help="QAT batch size (default: QATConfig's; HGQ steps are costly, bench_hgq uses 512)")
    ap.add_argument("--deltas", nargs="+", choices=tuple(PAIR_VARIANTS), default=["d2"],
                    help="on-chip pair features of the L1-word rows with U: ParT's set with the angle ln Delta by "
                         "L1FeatureSpec.delta (d2 = log of deta^2 + dphi^2, lse = log-sum-exp of the logs of |deta| "
                         "and |dphi|, no products), or words = U straight from the words (L1FeatureSpec.pair_set: "
                         "codes of |deta|, |dphi| and the pt logs, no angle log), part_codes = ParT's set with the "
                         "code of the octagonal distance for ln Delta")
    ap.add_argument("--target-ebops", type=float, default=None,
                    help="HGQ rows: the EBOPs target (qat.target_ebops; default: the budget's, 259k for the default "
                         "budget, which squeezes N = 32 hard)")
    ap.add_argument("--d-model", type=int, default=16, help="d (ffn, embedding and head widths 2d, 2 heads)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n-csim-jets", type=int, default=1000)
    ap.add_argument("--rtl", choices=("off", "verilog", "cosim"), default="verilog",
                    help="the open RTL route per run (verilog: da4ml logic checked by its C++ interpreter)")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "l1tagger-bench" / "interaction"))
    ap.add_argument("--out", default=str(RESULTS), help="where interaction.json / .md go (default %(default)s)")
    a = ap.parse_args(argv)
    out, work = Path(a.out), Path(a.work)
    for n in a.n_particles:
        for inputs in a.inputs:
            for design in a.designs:
                deltas = a.deltas if inputs == "l1words" and design != "none" else ["d2"]
                for hidden, delta in ((h, d) for h in (a.pair_hidden if design.startswith("mlp")
                                                       else a.pair_hidden[:1]) for d in deltas):
                    for recipe in a.recipes:
                        print(f"== N={n} {inputs} {design} hidden={hidden} angle={delta} {recipe}", flush=True)
                        row = run_one(a, n, inputs, design, hidden, recipe, work, delta)
                        rows = add_rows(out / "interaction.json", [row])
                        summ = summary(rows)
                        atomic_write_json(out / "interaction.json", {"benchmark": "interaction", "rows": rows,
                                                                     "summary": summ})
                        atomic_write_text(out / "interaction.md", markdown(rows, summ))
    print((out / "interaction.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
