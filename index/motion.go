package index

// motionMigrations: motion grids and intervals (version 6).
var motionMigrations = []migration{}
