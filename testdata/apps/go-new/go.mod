module example.com/gonew

go 1.26
