# gdb started in this directory loads the gmpos goroutine extension:
# `info goroutines`, `goroutine N bt`, `info runq`, `info sched` (see the
# README, "Debugging with gdb"). gdb runs a directory's .gdbinit only if it
# is on the auto-load safe path: once, add to ~/.config/gdb/gdbinit (or
# ~/.gdbinit) the line
#     add-auto-load-safe-path /path/to/gmpos/.gdbinit
# or pass `-ex 'source tools/gdb/gmpos.py'` as the runner's --gdb message shows.
source tools/gdb/gmpos.py
