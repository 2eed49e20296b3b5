module example.com/acme/services/api

go 1.22

require example.com/acme/libs/greeting v0.0.0

replace example.com/acme/libs/greeting => ../../libs/greeting
