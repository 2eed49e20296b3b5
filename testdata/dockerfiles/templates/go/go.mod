module example.com/gotemplate

go 1.22
