"""Data shipped with the package: quantization recipes (``quantize/*.yaml``), Level-1 budgets (``budgets/*.yaml``)
and the vendor tool scripts (``tcl/*.tcl``). Find them with :mod:`l1tagger.resources`, never by a path relative to
the checkout; the top-level ``quantize``, ``budgets`` and ``tcl`` of a checkout are symlinks into this folder."""
