package ratelimit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testenv"
	"github.com/dfms/dfms/server/ratelimit"
	"github.com/dfms/dfms/server/ratelimit/memory"
	"github.com/dfms/dfms/server/ratelimit/redis"
)

func TestOpenMemory(t *testing.T) {
	for _, u := range []string{"", "mem://", "mem:"} {
		l, err := ratelimit.Open(context.Background(), u)
		if err != nil {
			t.Fatalf("Open(%q): %v", u, err)
		}
		if _, ok := l.(*memory.Limiter); !ok {
			t.Errorf("Open(%q): got %T, want *memory.Limiter", u, l)
		}
		lim := ratelimit.Limit{Requests: 1, Window: time.Minute}
		if res, err := l.Allow(context.Background(), "k", lim); err != nil || !res.Allowed {
			t.Errorf("Open(%q): first Allow: got %+v, %v; want allowed", u, res, err)
		}
		l.Close()
	}
}

func TestOpenRedis(t *testing.T) {
	u := testenv.Redis(t)
	l, err := ratelimit.Open(context.Background(), u)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer l.Close()
	if _, ok := l.(*redis.Limiter); !ok {
		t.Errorf("Open: got %T, want *redis.Limiter", l)
	}
	lim := ratelimit.Limit{Requests: 1, Window: time.Second}
	if res, err := l.Allow(context.Background(), "k", lim); err != nil || !res.Allowed {
		t.Errorf("first Allow: got %+v, %v; want allowed", res, err)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want dfms.ErrorKind
	}{
		{"mem://host", dfms.Invalid},
		{"mem:///path", dfms.Invalid},
		{"mem://?x=1", dfms.Invalid},
		{"memcached://127.0.0.1:11211", dfms.Invalid},
		{"/var/lib/dfms", dfms.Invalid},
		{"redis://:sekrit@127.0.0.1:1/x", dfms.Invalid},
		{"redis://:sekrit@127.0.0.1:1", dfms.Unavailable},
		{"%zz://:sekrit@x", dfms.Invalid},
	} {
		l, err := ratelimit.Open(context.Background(), tc.url)
		if err == nil {
			l.Close()
		}
		if !dfms.Is(err, tc.want) {
			t.Errorf("Open(%q): got %v, want kind %v", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "sekrit") {
			t.Errorf("Open(%q): the error shows the password: %v", tc.url, err)
		}
	}
}
