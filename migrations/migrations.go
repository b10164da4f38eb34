// Package migrations holds the numbered schema migrations of the metadata
// store, one directory per SQL dialect (sqlite/, postgres/), embedded in the
// binary. Files are named NNNN_name.up.sql and NNNN_name.down.sql as
// golang-migrate expects; both dialects always have the same numbers.
//
// The metadata backends apply them with golang-migrate when they open a
// database, and refuse a database whose schema is newer than the binary.
package migrations

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	"github.com/golang-migrate/migrate/v4/source/iofs"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// FS returns the migrations of one dialect ("sqlite" or "postgres").
func FS(dialect string) (fs.FS, error) {
	switch dialect {
	case "sqlite", "postgres":
		return fs.Sub(files, dialect)
	}
	return nil, fmt.Errorf("migrations: unknown dialect %q", dialect)
}

// Latest returns the highest migration number of a dialect.
func Latest(dialect string) (uint, error) {
	sub, err := FS(dialect)
	if err != nil {
		return 0, err
	}
	names, err := fs.Glob(sub, "*.up.sql")
	if err != nil {
		return 0, err
	}
	var latest uint
	for _, n := range names {
		num, _, ok := strings.Cut(n, "_")
		if !ok {
			return 0, fmt.Errorf("migrations: bad file name %q", n)
		}
		v, err := strconv.ParseUint(num, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("migrations: bad file name %q: %w", n, err)
		}
		latest = max(latest, uint(v))
	}
	return latest, nil
}

// Apply brings the database behind drv to the latest migration of dialect.
// It refuses a database whose schema is newer than this binary knows, or
// one left dirty by a failed migration, rather than guessing.
func Apply(drv database.Driver, dialect string) error {
	latest, err := Latest(dialect)
	if err != nil {
		return err
	}
	return ApplyTo(drv, dialect, latest)
}

// ApplyTo brings the database behind drv up to migration target, as Apply
// does to the latest: a test of a migration builds a database as the
// releases before it left it.
func ApplyTo(drv database.Driver, dialect string, target uint) error {
	sub, err := FS(dialect)
	if err != nil {
		return err
	}
	src, err := iofs.New(sub, ".")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, dialect, drv)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	latest, err := Latest(dialect)
	if err != nil {
		return err
	}
	if target > latest {
		return fmt.Errorf("migrations: no migration %d (the latest is %d)", target, latest)
	}
	v, dirty, err := m.Version()
	switch {
	case errors.Is(err, migrate.ErrNilVersion):
	case err != nil:
		return fmt.Errorf("migrations: read schema version: %w", err)
	case dirty:
		return fmt.Errorf("migrations: schema version %d is dirty (a migration failed halfway); repair it by hand", v)
	case v > latest:
		return fmt.Errorf("migrations: the database schema is at version %d, newer than this binary's %d; upgrade dfms", v, latest)
	}
	if v > target && !errors.Is(err, migrate.ErrNilVersion) {
		return fmt.Errorf("migrations: the database schema is at version %d, past %d", v, target)
	}
	if err := m.Migrate(target); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}
