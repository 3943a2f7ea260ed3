module upcase/loadgen

go 1.19
