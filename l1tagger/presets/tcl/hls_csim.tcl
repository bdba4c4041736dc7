# Vitis HLS C simulation of an l1tagger/hls4ml project. Parameters: see l1t_common.tcl.
source [file join [file dirname [info script]] l1t_common.tcl]
l1t_open 1
csim_design
exit 0
