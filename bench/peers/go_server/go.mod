module upcase/peers/go_server

go 1.19
