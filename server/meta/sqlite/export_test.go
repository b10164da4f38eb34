package sqlite

// For the external tests: a database built up to a schema of the past.
var (
	MigrateTo = migrate
	DSN       = dsn
)
