package index

// eventMigrations: camera-side events (version 7).
var eventMigrations = []migration{}
