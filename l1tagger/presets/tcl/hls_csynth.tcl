# Vitis HLS C synthesis: writes <prj>/solution1/syn/report/<top>_csynth.rpt and .xml. Parameters: l1t_common.tcl.
source [file join [file dirname [info script]] l1t_common.tcl]
l1t_open 0
csynth_design
exit 0
