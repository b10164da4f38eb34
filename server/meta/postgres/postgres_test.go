package postgres_test

import (
	"context"
	"testing"

	"github.com/dfms/dfms/integration/testenv"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/server/meta/metatest"
	"github.com/dfms/dfms/server/meta/postgres"
)

func TestConformance(t *testing.T) {
	metatest.Run(t, func(t *testing.T) meta.Store {
		s, err := postgres.Open(context.Background(), testenv.Postgres(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	url := testenv.Postgres(t)
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec(`UPDATE schema_migrations SET version = 9999`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := postgres.Open(ctx, url, postgres.Options{}); err == nil {
		s.Close()
		t.Fatal("opened a database with a newer schema")
	}
}
