package index

// registryMigrations: camera registry (version 4).
var registryMigrations = []migration{}
