"""The vendor build stage: Vitis HLS / Vivado on an HLS project written by ``l1tagger convert``.

    vendor.py     drives the tcl/ scripts (`l1tagger build`), checks each tool's exit code and report, and writes
                  the parsed reports to PROJECT/reports/<source>.json for `l1tagger report`
"""
