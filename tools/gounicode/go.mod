module promshard.local/tools/gounicode

go 1.25
