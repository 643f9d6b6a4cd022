module contextlogger/bench/gofilter

go 1.24
