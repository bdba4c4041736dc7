# Shared by the l1tagger Vitis HLS scripts. Parameters come from the environment (set by `l1tagger build`):
#   L1T_PROJECT_DIR   hls4ml project directory (contains project.tcl, firmware/, tb_data/)   [required]
#   L1T_PROJECT_NAME  top function name (default: project_name from project.tcl)
#   L1T_PART          FPGA part            (default: part from project.tcl)
#   L1T_CLOCK_NS      clock period in ns   (default: clock_period from project.tcl)
#   L1T_SOLUTION      solution name        (default: solution1)
# Usage by hand:  L1T_PROJECT_DIR=hls_projects/default vitis_hls -f tcl/hls_csynth.tcl

proc l1t_env {name {default ""}} {
    if {[info exists ::env($name)] && $::env($name) ne ""} { return $::env($name) }
    if {$default eq "__required__"} {
        puts "ERROR: environment variable $name is not set"
        exit 2
    }
    return $default
}

proc l1t_open {reset} {
    set dir [l1t_env L1T_PROJECT_DIR __required__]
    cd $dir
    if {[file exists project.tcl]} { source project.tcl }
    set name [l1t_env L1T_PROJECT_NAME [expr {[info exists project_name] ? $project_name : "myproject"}]]
    set part [l1t_env L1T_PART [expr {[info exists part] ? $part : "xcvu13p-flga2577-2-e"}]]
    set period [l1t_env L1T_CLOCK_NS [expr {[info exists clock_period] ? $clock_period : 2.7778}]]
    set unc [expr {[info exists clock_uncertainty] ? $clock_uncertainty : "12.5%"}]
    if {$reset} { open_project -reset ${name}_prj } else { open_project ${name}_prj }
    set_top $name
    add_files firmware/${name}.cpp -cflags "-std=c++14"
    add_files -tb ${name}_test.cpp -cflags "-std=c++14"
    if {[file exists firmware/weights]} { add_files -tb firmware/weights }
    add_files -tb tb_data
    set sol [l1t_env L1T_SOLUTION solution1]
    if {$reset} { open_solution -reset $sol } else { open_solution $sol }
    set_part $part
    create_clock -period $period -name default
    set_clock_uncertainty $unc default
    config_compile -name_max_length 80
    puts "l1tagger: project $name part $part clock $period ns solution $sol"
    return $name
}
