package index

// authMigrations: users, tokens, audit log (version 5).
var authMigrations = []migration{}
