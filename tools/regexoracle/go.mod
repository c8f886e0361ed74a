module promshard/tools/regexoracle

go 1.22
