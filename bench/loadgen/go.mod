module contextlogger/bench/loadgen

go 1.24
