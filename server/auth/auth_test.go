package auth

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/meta"
)

const testPassword = "correct horse"

var ctx = context.Background()

func newKeys(t testing.TB) *Keys {
	t.Helper()
	k, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newService returns a Service over a fresh store, with the cheapest
// bcrypt cost.
func newService(t testing.TB) (*Service, meta.Store) {
	t.Helper()
	m := testkit.OpenSQLite(t)
	return New(m, newKeys(t), Config{BcryptCost: bcrypt.MinCost}), m
}

func register(t testing.TB, s *Service, email string) (meta.User, Tokens) {
	t.Helper()
	u, tok, err := s.Register(ctx, email, testPassword, "Test User")
	if err != nil {
		t.Fatalf("Register(%q): %v", email, err)
	}
	return u, tok
}

// updateStored changes user id's row in m directly, behind the service's
// back.
func updateStored(t testing.TB, m meta.Store, id dfms.UserID, change func(*meta.User)) {
	t.Helper()
	u := testkit.Must(m.GetUser(ctx, id))(t)
	change(&u)
	if err := m.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel() // cost 12 is slow, more so under -race
	s := New(testkit.OpenSQLite(t), newKeys(t), Config{})
	h, err := s.HashPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	cost, err := bcrypt.Cost([]byte(h))
	if err != nil {
		t.Fatal(err)
	}
	if cost != 12 {
		t.Errorf("bcrypt cost: got %d, want 12", cost)
	}
	want := Config{Issuer: "dfms", Audience: "dfms-api", AccessTTL: 15 * time.Minute, RefreshTTL: 7 * 24 * time.Hour, BcryptCost: 12}
	if s.cfg != want {
		t.Errorf("config: got %+v, want %+v", s.cfg, want)
	}
	if !CheckPassword(h, testPassword) {
		t.Errorf("CheckPassword(hash, right password): got false, want true")
	}
}

func TestRegisterValidation(t *testing.T) {
	s, _ := newService(t)
	long := func(r string, n int) string { return strings.Repeat(r, n) }
	ok := dfms.ErrorKind(255) // sentinel: no error expected
	tests := []struct {
		name, email, password, display string
		kind                           dfms.ErrorKind
		msg                            string // part of the error
	}{
		{"valid", "a@example.com", testPassword, "Ann", ok, ""},
		{"surrounding space trimmed", "  b@example.com ", testPassword, " Bob ", ok, ""},
		{"email of 254 bytes", long("c", 242) + "@example.com", testPassword, "", ok, ""},
		{"email of 255 bytes", long("c", 243) + "@example.com", testPassword, "", dfms.Invalid, "at most 254"},
		{"empty email", "", testPassword, "", dfms.Invalid, "email is required"},
		{"blank email", "   ", testPassword, "", dfms.Invalid, "email is required"},
		{"no at sign", "plainaddress", testPassword, "", dfms.Invalid, "not a valid address"},
		{"no local part", "@example.com", testPassword, "", dfms.Invalid, "not a valid address"},
		{"no domain", "d@", testPassword, "", dfms.Invalid, "not a valid address"},
		{"display name form", "Dee <d@example.com>", testPassword, "", dfms.Invalid, "not a valid address"},
		{"angle brackets", "<d@example.com>", testPassword, "", dfms.Invalid, "not a valid address"},
		{"two addresses", "d@example.com, e@example.com", testPassword, "", dfms.Invalid, "not a valid address"},
		{"space inside", "d e@example.com", testPassword, "", dfms.Invalid, "not a valid address"},
		{"newline inside", "d\n@example.com", testPassword, "", dfms.Invalid, "not a valid address"},
		{"comment", "d@example.com (me)", testPassword, "", dfms.Invalid, "not a valid address"},
		{"empty password", "f@example.com", "", "", dfms.Invalid, "at least 8 bytes"},
		{"password of 7 bytes", "f@example.com", "1234567", "", dfms.Invalid, "at least 8 bytes"},
		{"password of 8 bytes", "f@example.com", "12345678", "", ok, ""},
		{"password of 72 bytes", "g@example.com", long("p", 72), "", ok, ""},
		{"password of 73 bytes", "h@example.com", long("p", 73), "", dfms.Invalid, "at most 72 bytes"},
		{"4 two-byte runes are 8 bytes", "i@example.com", long("é", 4), "", ok, ""},
		{"3 two-byte runes are 6 bytes", "j@example.com", long("é", 3), "", dfms.Invalid, "at least 8 bytes"},
		{"36 two-byte runes are 72 bytes", "k@example.com", long("é", 36), "", ok, ""},
		{"37 two-byte runes are 74 bytes", "l@example.com", long("é", 37), "", dfms.Invalid, "at most 72 bytes"},
		{"25 three-byte runes are 75 bytes", "l@example.com", long("日", 25), "", dfms.Invalid, "at most 72 bytes"},
		{"name of 100 runes", "m@example.com", testPassword, long("é", 100), ok, ""},
		{"name of 101 runes", "n@example.com", testPassword, long("é", 101), dfms.Invalid, "at most 100 characters"},
		{"name with NUL", "n@example.com", testPassword, "a\x00b", dfms.Invalid, "control characters"},
		{"name with tab", "n@example.com", testPassword, "a\tb", dfms.Invalid, "control characters"},
		{"name with newline", "n@example.com", testPassword, "a\nb", dfms.Invalid, "control characters"},
		{"name with C1 control", "n@example.com", testPassword, "a\u0085b", dfms.Invalid, "control characters"},
		{"name not UTF-8", "n@example.com", testPassword, "a\xffb", dfms.Invalid, "UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, tok, err := s.Register(ctx, tc.email, tc.password, tc.display)
			if tc.kind == ok {
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				if u.Email != strings.TrimSpace(tc.email) || u.DisplayName != strings.TrimSpace(tc.display) {
					t.Errorf("got email %q name %q, want %q and %q", u.Email, u.DisplayName, strings.TrimSpace(tc.email), strings.TrimSpace(tc.display))
				}
				if u.Role != meta.RoleUser || !u.Active || u.PasswordHash != "" || u.ID <= 0 {
					t.Errorf("got user %+v, want an active user with role user and no hash", u)
				}
				if tok.AccessToken == "" || tok.RefreshToken == "" {
					t.Errorf("got tokens %+v, want a pair", tok)
				}
				if _, _, err := s.Login(ctx, tc.email, tc.password); err != nil {
					t.Errorf("Login after Register: got error %v, want none", err)
				}
				return
			}
			testkit.WantKind(t, err, tc.kind)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got error %q, want it to mention %q", err, tc.msg)
			}
		})
	}
}

func TestRegisterDefaultQuota(t *testing.T) {
	m := testkit.OpenSQLite(t)
	s := New(m, newKeys(t), Config{BcryptCost: bcrypt.MinCost, DefaultQuota: 1 << 30})
	u, _ := register(t, s, "q@example.com")
	stored, err := m.GetUser(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.QuotaBytes != 1<<30 || u.QuotaBytes != 1<<30 {
		t.Errorf("quota: got %d (stored %d), want %d", u.QuotaBytes, stored.QuotaBytes, 1<<30)
	}
	if cost, _ := bcrypt.Cost([]byte(stored.PasswordHash)); cost != bcrypt.MinCost {
		t.Errorf("stored hash cost: got %d, want %d", cost, bcrypt.MinCost)
	}
}

func TestRegisterDuplicateEmail(t *testing.T) {
	s, _ := newService(t)
	register(t, s, "Dup@Example.com")
	_, _, err := s.Register(ctx, "dUP@example.COM", testPassword, "")
	testkit.WantKind(t, err, dfms.Exist)
	_, err = s.CreateUser(ctx, " dup@example.com", testPassword, "", meta.RoleAdmin, 0)
	testkit.WantKind(t, err, dfms.Exist)
}

func TestCreateUser(t *testing.T) {
	s, m := newService(t)
	u, err := s.CreateUser(ctx, "root@example.com", testPassword, "Root", meta.RoleAdmin, 5000)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := m.GetUser(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Role != meta.RoleAdmin || !stored.Active || stored.QuotaBytes != 5000 {
		t.Errorf("got %+v, want an active admin with quota 5000", stored)
	}
	_, err = s.CreateUser(ctx, "x@example.com", testPassword, "", "root", 0)
	testkit.WantKind(t, err, dfms.Invalid)
	_, err = s.CreateUser(ctx, "x@example.com", testPassword, "", meta.RoleUser, -1)
	testkit.WantKind(t, err, dfms.Invalid)
	_, err = s.CreateUser(ctx, "x@example.com", "short", "", meta.RoleUser, 0)
	testkit.WantKind(t, err, dfms.Invalid)
	_, _, err = s.Login(ctx, "ROOT@example.com", testPassword)
	if err != nil {
		t.Errorf("Login as created admin: %v", err)
	}
}

func TestLogin(t *testing.T) {
	s, _ := newService(t)
	u, _ := register(t, s, "Mixed.Case@Example.com")

	got, tok, err := s.Login(ctx, "mixed.case@example.COM", testPassword)
	if err != nil {
		t.Fatalf("Login with other case: %v", err)
	}
	if got.ID != u.ID || got.PasswordHash != "" {
		t.Errorf("got user %d with hash %q, want user %d with no hash", got.ID, got.PasswordHash, u.ID)
	}
	if tok.TokenType != "Bearer" || tok.ExpiresIn != 900 {
		t.Errorf("got type %q expires_in %d, want Bearer and 900", tok.TokenType, tok.ExpiresIn)
	}
	c, err := s.Verify(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if c.UserID != u.ID || c.Email != "Mixed.Case@Example.com" || c.Role != meta.RoleUser || c.ID == "" {
		t.Errorf("got claims %+v, want user %d, the stored email and role user", c, u.ID)
	}
	if d := time.Until(c.ExpiresAt); d < 14*time.Minute || d > 15*time.Minute {
		t.Errorf("access token expires in %v, want about 15m", d)
	}

	_, _, errUnknown := s.Login(ctx, "nobody@example.com", testPassword)
	_, _, errWrong := s.Login(ctx, "mixed.case@example.com", "wrong password")
	_, _, errLong := s.Login(ctx, "mixed.case@example.com", testPassword+strings.Repeat("x", 80))
	for _, err := range []error{errUnknown, errWrong, errLong} {
		testkit.WantKind(t, err, dfms.Unauthenticated)
		if err.Error() != errUnknown.Error() {
			t.Errorf("got error %q, want the same as for an unknown email, %q", err, errUnknown)
		}
	}
	if !strings.Contains(errUnknown.Error(), "invalid email or password") {
		t.Errorf("got error %q, want it to say invalid email or password", errUnknown)
	}
}

// A password that starts with the right 72 bytes is still wrong: bcrypt
// would ignore the rest.
func TestCheckPasswordLong(t *testing.T) {
	s, _ := newService(t)
	pw := strings.Repeat("p", 72)
	h, err := s.HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	if !CheckPassword(h, pw) {
		t.Errorf("CheckPassword(72 bytes): got false, want true")
	}
	if CheckPassword(h, pw+"x") {
		t.Errorf("CheckPassword(73 bytes with the right prefix): got true, want false")
	}
	if _, err := s.HashPassword(pw + "x"); !dfms.Is(err, dfms.Invalid) {
		t.Errorf("HashPassword(73 bytes): got %v, want kind Invalid", err)
	}
}

func TestLoginDeactivated(t *testing.T) {
	s, _ := newService(t)
	u, tok := register(t, s, "gone@example.com")
	if err := s.SetActive(ctx, u.ID, false); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.Login(ctx, "gone@example.com", "wrong password")
	testkit.WantKind(t, err, dfms.Unauthenticated)
	if strings.Contains(err.Error(), "deactivated") {
		t.Errorf("wrong password: got %q, which reveals the account state", err)
	}
	_, _, err = s.Login(ctx, "gone@example.com", testPassword)
	testkit.WantKind(t, err, dfms.Unauthenticated)
	if !strings.Contains(err.Error(), "account is deactivated") {
		t.Errorf("right password: got %q, want it to say the account is deactivated", err)
	}
	// Deactivation revoked the refresh token, and reactivation does not
	// bring it back.
	if err := s.SetActive(ctx, u.ID, true); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Refresh(ctx, tok.RefreshToken)
	testkit.WantKind(t, err, dfms.Unauthenticated)
	if _, _, err := s.Login(ctx, "gone@example.com", testPassword); err != nil {
		t.Errorf("Login after reactivation: %v", err)
	}
}

func TestRefreshRotates(t *testing.T) {
	s, _ := newService(t)
	u, tok := register(t, s, "r@example.com")
	seen := map[string]bool{tok.RefreshToken: true}
	for i := range 3 {
		got, next, err := s.Refresh(ctx, tok.RefreshToken)
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		if got.ID != u.ID || got.PasswordHash != "" {
			t.Errorf("refresh %d: got user %d with hash %q, want %d with none", i, got.ID, got.PasswordHash, u.ID)
		}
		if seen[next.RefreshToken] {
			t.Fatalf("refresh %d returned a refresh token seen before", i)
		}
		seen[next.RefreshToken] = true
		if _, err := s.Verify(next.AccessToken); err != nil {
			t.Errorf("refresh %d: new access token: %v", i, err)
		}
		tok = next
	}
}

func TestRefreshRereadsUser(t *testing.T) {
	s, m := newService(t)
	u, tok := register(t, s, "promote@example.com")
	c, err := s.Verify(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if c.Role != meta.RoleUser {
		t.Fatalf("role before: got %q, want user", c.Role)
	}
	updateStored(t, m, u.ID, func(u *meta.User) { u.Role = meta.RoleAdmin })
	got, tok, err := s.Refresh(ctx, tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if got.Role != meta.RoleAdmin {
		t.Errorf("returned user's role: got %q, want admin", got.Role)
	}
	c, err = s.Verify(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if c.Role != meta.RoleAdmin || c.Email != "promote@example.com" {
		t.Errorf("after refresh: got role %q email %q, want admin and promote@example.com", c.Role, c.Email)
	}

	// Demotion, likewise (with another administrator left: the store
	// keeps the last one).
	if _, err := m.CreateUser(ctx, meta.User{Email: "other-admin@example.com", Role: meta.RoleAdmin, Active: true}); err != nil {
		t.Fatal(err)
	}
	updateStored(t, m, u.ID, func(u *meta.User) { u.Role = meta.RoleUser })
	_, tok, err = s.Refresh(ctx, tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Verify(tok.AccessToken); c.Role != meta.RoleUser {
		t.Errorf("after demotion: got role %q, want user", c.Role)
	}
}

// Deactivating through the store directly (not SetActive) leaves the
// refresh tokens alone; Refresh must still refuse, and leave no usable
// token behind.
func TestRefreshInactiveInDatabase(t *testing.T) {
	s, m := newService(t)
	u, tok := register(t, s, "flag@example.com")
	updateStored(t, m, u.ID, func(u *meta.User) { u.Active = false })
	_, _, err := s.Refresh(ctx, tok.RefreshToken)
	testkit.WantKind(t, err, dfms.Unauthenticated)
	if !strings.Contains(err.Error(), "deactivated") {
		t.Errorf("got %q, want it to say deactivated", err)
	}
}

func TestReuseRevokesFamily(t *testing.T) {
	s, _ := newService(t)
	_, t0 := register(t, s, "reuse@example.com")
	_, other := register(t, s, "bystander@example.com")
	_, t1, err := s.Refresh(ctx, t0.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Refresh(ctx, t0.RefreshToken)
	testkit.WantKind(t, err, dfms.Unauthenticated)
	_, _, err = s.Refresh(ctx, t1.RefreshToken)
	testkit.WantKind(t, err, dfms.Unauthenticated)
	// Other families are untouched.
	if _, _, err := s.Refresh(ctx, other.RefreshToken); err != nil {
		t.Errorf("another user's family: %v", err)
	}
}

func TestLoginFamiliesAreSeparate(t *testing.T) {
	s, _ := newService(t)
	_, a := register(t, s, "two@example.com")
	_, b, err := s.Login(ctx, "two@example.com", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Logout(ctx, a.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Refresh(ctx, b.RefreshToken); err != nil {
		t.Errorf("the other login's family after logout: %v", err)
	}
}

func TestConcurrentRefresh(t *testing.T) {
	s, _ := newService(t)
	_, tok := register(t, s, "race@example.com")
	const n = 8
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, _, err := s.Refresh(ctx, tok.RefreshToken)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	succeeded := 0
	for err := range errs {
		if err == nil {
			succeeded++
			continue
		}
		testkit.WantKind(t, err, dfms.Unauthenticated)
	}
	if succeeded > 1 {
		t.Errorf("got %d successful refreshes of one token, want at most 1", succeeded)
	}
}

func TestLogout(t *testing.T) {
	s, _ := newService(t)
	_, t0 := register(t, s, "out@example.com")
	_, t1, err := s.Refresh(ctx, t0.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	// Logging out with a replaced token ends its family too.
	if err := s.Logout(ctx, t0.RefreshToken); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Refresh(ctx, t1.RefreshToken)
	testkit.WantKind(t, err, dfms.Unauthenticated)
	if err := s.Logout(ctx, t1.RefreshToken); err != nil {
		t.Errorf("second logout: got %v, want none", err)
	}
	if err := s.Logout(ctx, t1.AccessToken); !dfms.Is(err, dfms.Unauthenticated) {
		t.Errorf("logout with an access token: got %v, want kind Unauthenticated", err)
	}
	if err := s.Logout(ctx, "garbage"); !dfms.Is(err, dfms.Unauthenticated) {
		t.Errorf("logout with garbage: got %v, want kind Unauthenticated", err)
	}
}

func TestLogoutExpired(t *testing.T) {
	s, _ := newService(t)
	register(t, s, "old@example.com")
	s.now = func() time.Time { return time.Now().Add(-8 * 24 * time.Hour) }
	_, tok, err := s.Login(ctx, "old@example.com", testPassword)
	s.now = time.Now
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Refresh(ctx, tok.RefreshToken)
	testkit.WantKind(t, err, dfms.Unauthenticated)
	if err := s.Logout(ctx, tok.RefreshToken); err != nil {
		t.Errorf("logout with an expired token: got %v, want none", err)
	}
	other := New(testkit.OpenSQLite(t), newKeys(t), s.cfg)
	if err := other.Logout(ctx, tok.RefreshToken); !dfms.Is(err, dfms.Unauthenticated) {
		t.Errorf("logout with a token of another key: got %v, want kind Unauthenticated", err)
	}
}

func TestChangePassword(t *testing.T) {
	s, _ := newService(t)
	u, tok := register(t, s, "pw@example.com")
	const newPassword = "battery staple"

	err := s.ChangePassword(ctx, u.ID, "wrong password", newPassword)
	testkit.WantKind(t, err, dfms.Unauthenticated)
	err = s.ChangePassword(ctx, u.ID, testPassword, "short")
	testkit.WantKind(t, err, dfms.Invalid)
	err = s.ChangePassword(ctx, u.ID, testPassword, strings.Repeat("x", 73))
	testkit.WantKind(t, err, dfms.Invalid)
	// Nothing changed so far.
	if _, _, err := s.Login(ctx, "pw@example.com", testPassword); err != nil {
		t.Fatalf("login with the old password before the change: %v", err)
	}

	if err := s.ChangePassword(ctx, u.ID, testPassword, newPassword); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Refresh(ctx, tok.RefreshToken)
	testkit.WantKind(t, err, dfms.Unauthenticated)
	_, _, err = s.Login(ctx, "pw@example.com", testPassword)
	testkit.WantKind(t, err, dfms.Unauthenticated)
	if _, _, err := s.Login(ctx, "pw@example.com", newPassword); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
}

func TestSetActive(t *testing.T) {
	s, m := newService(t)
	u, _ := register(t, s, "act@example.com")
	for _, active := range []bool{false, false, true, true} {
		if err := s.SetActive(ctx, u.ID, active); err != nil {
			t.Fatal(err)
		}
		got, err := m.GetUser(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Active != active {
			t.Errorf("got active %v, want %v", got.Active, active)
		}
	}
	err := s.SetActive(ctx, 9999, false)
	testkit.WantKind(t, err, dfms.NotExist)
}
