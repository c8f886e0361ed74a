module promshard.local/tools/gocase

go 1.22
