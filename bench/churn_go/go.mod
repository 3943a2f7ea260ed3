module upcase/churn

go 1.19
