# Vitis HLS C/RTL co-simulation (run after hls_csynth.tcl). Parameters: see l1t_common.tcl.
source [file join [file dirname [info script]] l1t_common.tcl]
set top [l1t_open 0]
# hls4ml's test bench writes tb_data/rtl_cosim_results.log when RTL_SIM is defined
add_files -tb ${top}_test.cpp -cflags "-std=c++14 -DRTL_SIM"
cosim_design -trace_level none
exit 0
