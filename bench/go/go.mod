module gmpos/bench/go

go 1.19
