module example.com/acme/libs/greeting

go 1.22
