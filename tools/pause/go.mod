module promshard.local/tools/pause

go 1.26
