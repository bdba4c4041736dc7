# Vivado out-of-context synthesis of the Vitis HLS RTL, with utilization and timing reports.
# Environment (set by `l1tagger build --vsynth`):
#   L1T_PROJECT_DIR, L1T_PROJECT_NAME, L1T_PART, L1T_CLOCK_NS  as in l1t_common.tcl   [required]
#   L1T_VIVADO_DIR    output directory (default: $L1T_PROJECT_DIR/vivado)
#   L1T_SOLUTION      HLS solution (default: solution1)
#   L1T_IMPL          1 = also place and route before reporting (default 0: post-synthesis numbers)
proc l1t_env {name {default ""}} {
    if {[info exists ::env($name)] && $::env($name) ne ""} { return $::env($name) }
    if {$default eq "__required__"} { puts "ERROR: environment variable $name is not set"; exit 2 }
    return $default
}
set dir    [l1t_env L1T_PROJECT_DIR __required__]
set top    [l1t_env L1T_PROJECT_NAME __required__]
set part   [l1t_env L1T_PART __required__]
set period [l1t_env L1T_CLOCK_NS __required__]
set sol    [l1t_env L1T_SOLUTION solution1]
set out    [l1t_env L1T_VIVADO_DIR [file join $dir vivado]]
set impl   [l1t_env L1T_IMPL 0]
set rtl [file join $dir ${top}_prj $sol syn verilog]
if {![file isdirectory $rtl]} { puts "ERROR: no synthesized RTL in $rtl (run C synthesis first)"; exit 3 }
file mkdir $out
set vfiles [glob -nocomplain -directory $rtl *.v]
if {[llength $vfiles] == 0} { puts "ERROR: no Verilog files in $rtl"; exit 3 }
read_verilog $vfiles
foreach tcl [glob -nocomplain -directory $rtl *.tcl] { source $tcl }
set xdc [file join $out clock.xdc]
set fh [open $xdc w]
puts $fh "create_clock -period $period -name ap_clk \[get_ports ap_clk\]"
close $fh
read_xdc -mode out_of_context $xdc
synth_design -top $top -part $part -mode out_of_context
if {$impl} {
    opt_design
    place_design
    route_design
}
report_utilization -file [file join $out utilization.rpt]
report_timing_summary -file [file join $out timing_summary.rpt]
write_checkpoint -force [file join $out ${top}_ooc.dcp]
exit 0
