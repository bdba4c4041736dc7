# Vitis HLS IP export (run after hls_csynth.tcl). Extra parameter: L1T_IP_VERSION (default 1.0.0).
source [file join [file dirname [info script]] l1t_common.tcl]
l1t_open 0
export_design -format ip_catalog -version [l1t_env L1T_IP_VERSION 1.0.0]
exit 0
