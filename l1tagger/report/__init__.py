"""Latency/resource reports against Level-1 budgets. (Vendor builds, the tcl/ scripts behind `l1tagger build`, are their own
stage: ``l1tagger/build/vendor.py``.)

    budgets.py    budget presets (budgets/*.yaml), strict loader with units (units.py)
    parsers.py    Vitis HLS / Vivado report text -> SynthesisReport (pure functions)
    estimates.py  resource/latency estimate from a cleaned QONNX graph (source "estimate", rules written down)
    schema.py     what `l1tagger report` reads from a run directory
    page.py       build_report(inputs) -> dict, Markdown/HTML renderers;  plots.py: ROC and Pareto figures
    make.py       write_report(run_dir, budget, fmt): the whole page, for `l1tagger report` and `l1tagger run`
"""
