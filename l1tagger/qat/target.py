"""The EBOPs target of an HGQ run, and where it comes from: one resolution for ``l1tagger run`` and
``l1tagger quantize``.

    resolve_target(recipe_path, explicit=None, budget=DEFAULT_BUDGET) -> {"target_ebops", "source", "detail"} | None

Precedence (docs/cost.md): an explicit target (``qat.target_ebops`` / ``--target-ebops``) > the recipe's number
(``hgq.target_ebops: 4.0e+5``) > the budget (the recipe's ``target_ebops: budget``): ``BUDGET_EBOPS_FRACTION`` of
the budget's LUT allowance, plus 55 per DSP where products may use DSPs (``l1tagger.qat.hgq.target_from_budget``).
None for a uniform recipe (no ``hgq`` section).
"""

from __future__ import annotations

from l1tagger.qat.hgq import BUDGET_EBOPS_FRACTION, products_may_use_dsp, target_from_budget
from l1tagger.qat.recipe import load_recipe
from l1tagger.report.budgets import DEFAULT_BUDGET, load_budget


def resolve_target(recipe_path, explicit: float | None = None, budget=DEFAULT_BUDGET,
                   explicit_detail: str = "given explicitly") -> dict | None:
    hgq = load_recipe(recipe_path).hgq
    if hgq is None:
        return None
    if explicit is not None:
        return {"target_ebops": float(explicit), "source": "qat.target_ebops", "detail": explicit_detail}
    if hgq.target_ebops is not None:
        return {"target_ebops": float(hgq.target_ebops), "source": "recipe",
                "detail": f"hgq.target_ebops of {recipe_path}"}
    b = load_budget(budget)
    lut, dsp = b.allowed("lut"), b.allowed("dsp")
    dsp_note = f" + 55 x its {dsp:,.0f} DSP" if products_may_use_dsp(hgq) else \
        " (no DSP term: activations <= 8 bits, every product is in LUTs)"
    return {"target_ebops": target_from_budget(lut, dsp, hgq), "source": "budget",
            "detail": f"{BUDGET_EBOPS_FRACTION:g} x (the {lut:,.0f} LUT of budget {b.name}{dsp_note}); the rest "
                      f"is left for the logic EBOPs do not count (docs/cost.md)"}
