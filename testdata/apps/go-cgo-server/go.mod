module example.com/checksum-api

go 1.22
