package index

// MERGE NOTE (branch s21): migration 15 (segment_node.go) was allotted to
// this branch while 13 and 14 belong to branches not merged here yet, and
// joinMigrations wants consecutive versions. These two no-op stand-ins
// keep the sequence whole on this branch only: delete this file (and its
// entry in sqlite.go's migrations list) when merging the real 13 and 14.
var reservedMigrationsS21 = []migration{
	{version: 14, name: "reserved (s21 stand-in)", stmts: []string{`SELECT 1`}, pgStmts: []string{`SELECT 1`}},
}
