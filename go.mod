module github.com/concordtx/concord

go 1.26
