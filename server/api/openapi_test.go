package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"html"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/auth"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/server/ratelimit"
	"github.com/dfms/dfms/server/ratelimit/memory"
)

// publicPaths are the routes that need no access token; every other
// operation must inherit the bearer security and document 401.
var publicPaths = map[string]bool{
	"/health":                true,
	"/ready":                 true,
	"/metrics":               true,
	"/openapi.yaml":          true,
	"/docs":                  true,
	"/.well-known/jwks.json": true,
	"/api/v1/auth/register":  true,
	"/api/v1/auth/login":     true,
	"/api/v1/auth/refresh":   true,
	"/api/v1/auth/logout":    true,
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// newTestAPI builds an API on real, minimal dependencies: SQLite metadata
// and chunks on disk, both in a temporary directory.
func newTestAPI(t testing.TB, d Deps, cfg Config, wrap ...func(dfms.ChunkStore) dfms.ChunkStore) *API {
	t.Helper()
	st := testkit.NewStack(t, testkit.Options{NoUser: true, WrapChunks: func(c dfms.ChunkStore) dfms.ChunkStore {
		for _, w := range wrap {
			c = w(c)
		}
		return c
	}})
	keys, err := auth.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	d.Files, d.Keys, d.Auth = st.Files, keys, auth.New(st.Meta, keys, auth.Config{BcryptCost: 4})
	if d.Log == nil {
		d.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return New(d, cfg)
}

// ---- the document ----

// spec is the parsed OpenAPI document.
type spec struct {
	root map[string]any
}

func loadSpec(t testing.TB) *spec {
	t.Helper()
	var root any
	if err := yaml.Unmarshal(openAPISpec, &root); err != nil {
		t.Fatalf("openapi.yaml does not parse: %v", err)
	}
	m, ok := root.(map[string]any)
	if !ok {
		t.Fatalf("openapi.yaml: the document is a %T, not a mapping", root)
	}
	return &spec{root: m}
}

// asMap returns v as a string-keyed mapping (nil if it is not one). YAML
// keys that are not strings (an unquoted 200) are rendered with %v.
func asMap(v any) map[string]any {
	switch m := v.(type) {
	case map[string]any:
		return m
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, v := range m {
			out[fmt.Sprint(k)] = v
		}
		return out
	}
	return nil
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

// pointer resolves a local JSON reference such as
// "#/components/schemas/File".
func (s *spec) pointer(ref string) (any, bool) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	var cur any = s.root
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m := asMap(cur)
		if m == nil {
			return nil, false
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// deref follows $ref chains (at most a few levels) and returns the mapping.
func (s *spec) deref(v any) map[string]any {
	m := asMap(v)
	for i := 0; i < 10 && m != nil; i++ {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		target, ok := s.pointer(ref)
		if !ok {
			return nil
		}
		m = asMap(target)
	}
	return m
}

type operation struct {
	method, path string // "GET", "/api/v1/files/{id}"
	op, item     map[string]any
}

func (o operation) key() string { return o.method + " " + o.path }

func (s *spec) operations() map[string]operation {
	out := map[string]operation{}
	for path, item := range asMap(s.root["paths"]) {
		im := asMap(item)
		for _, method := range httpMethods {
			if op := asMap(im[method]); op != nil {
				o := operation{method: strings.ToUpper(method), path: path, op: op, item: im}
				out[o.key()] = o
			}
		}
	}
	return out
}

// parameters returns the operation's parameters, path-level ones included
// (an operation-level parameter overrides a path-level one of the same
// name and location), with references resolved.
func (s *spec) parameters(o operation) []map[string]any {
	var out []map[string]any
	seen := map[string]int{}
	for _, list := range [][]any{asList(o.item["parameters"]), asList(o.op["parameters"])} {
		for _, p := range list {
			pm := s.deref(p)
			if pm == nil {
				continue
			}
			k := asString(pm["in"]) + ":" + asString(pm["name"])
			if i, ok := seen[k]; ok {
				out[i] = pm
				continue
			}
			seen[k] = len(out)
			out = append(out, pm)
		}
	}
	return out
}

// response returns the documented response for a status code.
func (s *spec) response(o operation, status int) map[string]any {
	return s.deref(asMap(o.op["responses"])[strconv.Itoa(status)])
}

func (o operation) public() bool {
	sec, ok := o.op["security"]
	return ok && len(asList(sec)) == 0
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// routerOperations lists the router's routes as "METHOD /path/{param}".
func routerOperations(a *API) map[string]bool {
	out := map[string]bool{}
	for _, r := range a.Routes() {
		if r.Method == http.MethodHead {
			continue // gin adds none, but they would not be documented
		}
		out[r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIMatchesRouter keeps the document and the router equal, in
// both directions.
func TestOpenAPIMatchesRouter(t *testing.T) {
	s := loadSpec(t)
	a := newTestAPI(t, Deps{}, Config{})
	documented := s.operations()
	routed := routerOperations(a)
	var missing, extra []string
	for _, k := range sortedKeys(routed) {
		if _, ok := documented[k]; !ok {
			missing = append(missing, k)
		}
	}
	for _, k := range sortedKeys(documented) {
		if !routed[k] {
			extra = append(extra, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("routes missing from openapi.yaml:\n\t%s", strings.Join(missing, "\n\t"))
	}
	if len(extra) > 0 {
		t.Errorf("operations in openapi.yaml that the router does not serve:\n\t%s", strings.Join(extra, "\n\t"))
	}
	if len(routed) == 0 {
		t.Fatal("the router has no routes")
	}
	t.Logf("%d operations documented, %d routes", len(documented), len(routed))
}

// TestOpenAPIDocument checks the document's own consistency.
func TestOpenAPIDocument(t *testing.T) {
	s := loadSpec(t)
	if v := asString(s.root["openapi"]); !strings.HasPrefix(v, "3.") {
		t.Errorf("openapi = %q, want 3.x", v)
	}
	info := asMap(s.root["info"])
	if asString(info["title"]) == "" || asString(info["version"]) == "" {
		t.Errorf("info needs a title and a version, got %v", info)
	}
	scheme := asMap(asMap(asMap(s.root["components"])["securitySchemes"])["bearerAuth"])
	if scheme["type"] != "http" || scheme["scheme"] != "bearer" {
		t.Errorf("components.securitySchemes.bearerAuth = %v, want an HTTP bearer scheme", scheme)
	}
	global := asList(s.root["security"])
	if len(global) != 1 || asMap(global[0])["bearerAuth"] == nil {
		t.Errorf("the global security must be bearerAuth, got %v", global)
	}

	// Every $ref resolves.
	var walk func(v any, at string)
	walk = func(v any, at string) {
		if m := asMap(v); m != nil {
			if ref, ok := m["$ref"]; ok {
				r, _ := ref.(string)
				if _, ok := s.pointer(r); !ok {
					t.Errorf("%s: $ref %q does not resolve", at, ref)
				}
			}
			for k, c := range m {
				walk(c, at+"/"+k)
			}
		}
		for i, c := range asList(v) {
			walk(c, fmt.Sprintf("%s/%d", at, i))
		}
	}
	walk(s.root, "#")

	ops := s.operations()
	ids := map[string]string{}
	templateParam := regexp.MustCompile(`\{([^}]+)\}`)
	for _, k := range sortedKeys(ops) {
		o := ops[k]
		id := asString(o.op["operationId"])
		if id == "" {
			t.Errorf("%s: no operationId", k)
		} else if prev, dup := ids[id]; dup {
			t.Errorf("%s: operationId %q is also used by %s", k, id, prev)
		} else {
			ids[id] = k
		}
		if len(asList(o.op["tags"])) == 0 {
			t.Errorf("%s: no tags", k)
		}

		// Path parameters: declared exactly as the template names them.
		declared := map[string]bool{}
		for _, p := range s.parameters(o) {
			if p["in"] != "path" {
				continue
			}
			name := asString(p["name"])
			declared[name] = true
			if p["required"] != true {
				t.Errorf("%s: path parameter %q must be required", k, name)
			}
			if !strings.Contains(o.path, "{"+name+"}") {
				t.Errorf("%s: path parameter %q is not in the path", k, name)
			}
		}
		for _, m := range templateParam.FindAllStringSubmatch(o.path, -1) {
			if !declared[m[1]] {
				t.Errorf("%s: path parameter {%s} is not declared", k, m[1])
			}
		}

		// Responses: valid codes, one success at least, each described.
		responses := asMap(o.op["responses"])
		success := false
		for code, r := range responses {
			n, err := strconv.Atoi(code)
			if err != nil || n < 100 || n > 599 {
				t.Errorf("%s: response key %q is not a status code", k, code)
				continue
			}
			success = success || n < 400
			if asString(s.deref(r)["description"]) == "" {
				t.Errorf("%s: response %s has no description", k, code)
			}
		}
		if !success {
			t.Errorf("%s: no success response", k)
		}

		// Security: public routes opt out, every other one is
		// authenticated and documents 401.
		switch {
		case publicPaths[o.path] && !o.public():
			t.Errorf("%s: a public route must say security: []", k)
		case !publicPaths[o.path] && o.public():
			t.Errorf("%s: declares security: [] but the route needs a token", k)
		case !publicPaths[o.path] && responses["401"] == nil:
			t.Errorf("%s: an authenticated operation must document 401", k)
		}
		if strings.HasPrefix(o.path, "/api/v1/admin/") && responses["403"] == nil {
			t.Errorf("%s: an admin operation must document 403", k)
		}
		if strings.HasPrefix(o.path, "/api/v1/") && responses["429"] == nil {
			t.Errorf("%s: a rate-limited operation must document 429", k)
		}
	}
}

// TestOpenAPIErrorCodes checks that the Error schema lists exactly the
// codes the package can answer: those of kindStatus and every literal code
// given to failCode or put in an errorInfo.
func TestOpenAPIErrorCodes(t *testing.T) {
	s := loadSpec(t)
	ei := s.deref(map[string]any{"$ref": "#/components/schemas/ErrorInfo"})
	documented := map[string]bool{}
	for _, c := range asList(asMap(asMap(ei["properties"])["code"])["enum"]) {
		documented[asString(c)] = true
	}
	used := map[string]bool{}
	for _, ks := range kindStatus {
		used[ks.code] = true
	}
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var sources []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, f)
	}
	lit := func(e ast.Expr) (string, bool) {
		if b, ok := e.(*ast.BasicLit); ok && b.Kind == token.STRING {
			v, err := strconv.Unquote(b.Value)
			return v, err == nil
		}
		return "", false
	}
	for _, f := range sources {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				// The code is failCode's third argument and failAs's fifth.
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
					if i, ok := map[string]int{"failCode": 2, "failAs": 4}[sel.Sel.Name]; ok && len(n.Args) > i {
						if v, ok := lit(n.Args[i]); ok {
							used[v] = true
						}
					}
				}
			case *ast.CompositeLit:
				if id, ok := n.Type.(*ast.Ident); ok && id.Name == "errorInfo" {
					for _, e := range n.Elts {
						if kv, ok := e.(*ast.KeyValueExpr); ok {
							if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Code" {
								if v, ok := lit(kv.Value); ok {
									used[v] = true
								}
							}
						}
					}
				}
			}
			return true
		})
	}
	for _, c := range sortedKeys(used) {
		if !documented[c] {
			t.Errorf("error code %s is answered by the API but not listed in components.schemas.ErrorInfo", c)
		}
	}
	for _, c := range sortedKeys(documented) {
		if !used[c] {
			t.Errorf("error code %s is listed in openapi.yaml but the API never answers it", c)
		}
	}
}

// TestOpenAPIServed serves the document over the real handler.
func TestOpenAPIServed(t *testing.T) {
	h := newTestAPI(t, Deps{}, Config{}).Handler()

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.yaml", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /openapi.yaml = %d", rec.Code)
	}
	if !bytes.Equal(rec.Body.Bytes(), openAPISpec) {
		t.Error("GET /openapi.yaml does not serve the embedded document")
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/yaml") {
		t.Errorf("GET /openapi.yaml Content-Type = %q", ct)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/docs", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /docs = %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("GET /docs Content-Type = %q", ct)
	}
	page := rec.Body.String()
	if !strings.Contains(page, `href="/openapi.yaml"`) {
		t.Error("GET /docs does not link to /openapi.yaml")
	}
	_, pre, ok := strings.Cut(page, "<pre>")
	pre, _, ok2 := strings.Cut(pre, "</pre>")
	if !ok || !ok2 {
		t.Fatal("GET /docs has no <pre> block")
	}
	if html.UnescapeString(pre) != string(openAPISpec) {
		t.Error("GET /docs does not reproduce the document")
	}
}

// TestOpenAPIAuthentication requests every route without a token: the
// public ones must not answer 401, every other one must answer the
// documented 401 AUTH_TOKEN_MISSING.
func TestOpenAPIAuthentication(t *testing.T) {
	s := loadSpec(t)
	a := newTestAPI(t, Deps{}, Config{})
	ops := s.operations()
	params := strings.NewReplacer("{id}", "1", "{version}", "1", "{upload}", "0123456789abcdef0123456789abcdef",
		"{part}", "1", "{hash}", strings.Repeat("0", 64))
	for _, k := range sortedKeys(ops) {
		o := ops[k]
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(o.method, params.Replace(o.path), strings.NewReader(""))
		a.Handler().ServeHTTP(rec, req)
		if publicPaths[o.path] {
			if rec.Code == http.StatusUnauthorized {
				t.Errorf("%s: a public route answered 401 without a token", k)
			}
			continue
		}
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%s without a token = %d, want 401", k, rec.Code)
			continue
		}
		var body map[string]any
		json.Unmarshal(rec.Body.Bytes(), &body)
		if code := asMap(body["error"])["code"]; code != "AUTH_TOKEN_MISSING" {
			t.Errorf("%s without a token: code %v, want AUTH_TOKEN_MISSING", k, code)
		}
	}
}

// ---- responses against the document ----

// validator checks JSON values against the document's schemas. Objects are
// checked strictly: a property the schema does not list is an error unless
// additionalProperties allows it, so the document cannot fall behind the
// handlers.
type validator struct{ s *spec }

func (v validator) typeOf(sm map[string]any) string {
	if t := asString(sm["type"]); t != "" {
		return t
	}
	for _, sub := range asList(sm["allOf"]) {
		if t := v.typeOf(v.s.deref(sub)); t != "" {
			return t
		}
	}
	if sm["properties"] != nil {
		return "object"
	}
	return ""
}

// objectShape merges the properties, required names and
// additionalProperties of a schema and its allOf parts.
func (v validator) objectShape(sm map[string]any, props map[string]any, req map[string]bool) (additional any) {
	for k, p := range asMap(sm["properties"]) {
		props[k] = p
	}
	for _, r := range asList(sm["required"]) {
		req[asString(r)] = true
	}
	additional = sm["additionalProperties"]
	for _, sub := range asList(sm["allOf"]) {
		if a := v.objectShape(v.s.deref(sub), props, req); additional == nil {
			additional = a
		}
	}
	return additional
}

func (v validator) check(schema any, val any, at string) []string {
	sm := v.s.deref(schema)
	if sm == nil {
		return []string{at + ": unresolvable schema"}
	}
	if val == nil {
		if sm["nullable"] == true || v.typeOf(sm) == "" && sm["oneOf"] == nil {
			return nil
		}
		for _, sub := range asList(sm["allOf"]) {
			if s := v.s.deref(sub); s["nullable"] == true {
				return nil
			}
		}
		return []string{at + ": null is not allowed"}
	}
	if oneOf := asList(sm["oneOf"]); len(oneOf) > 0 {
		for _, sub := range oneOf {
			if len(v.check(sub, val, at)) == 0 {
				return nil
			}
		}
		return []string{fmt.Sprintf("%s: %v matches no oneOf alternative", at, val)}
	}
	var errs []string
	if enum := asList(sm["enum"]); len(enum) > 0 {
		if !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(val) }) {
			errs = append(errs, fmt.Sprintf("%s: %v is not one of %v", at, val, enum))
		}
	}
	switch t := v.typeOf(sm); t {
	case "object":
		m, ok := val.(map[string]any)
		if !ok {
			return append(errs, fmt.Sprintf("%s: %T is not an object", at, val))
		}
		props, req := map[string]any{}, map[string]bool{}
		additional := v.objectShape(sm, props, req)
		for _, r := range sortedKeys(req) {
			if _, ok := m[r]; !ok {
				errs = append(errs, fmt.Sprintf("%s: required property %q is missing", at, r))
			}
		}
		for _, k := range sortedKeys(m) {
			if p, ok := props[k]; ok {
				errs = append(errs, v.check(p, m[k], at+"."+k)...)
				continue
			}
			switch a := additional.(type) {
			case bool:
				if !a {
					errs = append(errs, fmt.Sprintf("%s: property %q is not allowed", at, k))
				}
			case nil:
				errs = append(errs, fmt.Sprintf("%s: property %q is not documented", at, k))
			default:
				errs = append(errs, v.check(a, m[k], at+"."+k)...)
			}
		}
	case "array":
		l, ok := val.([]any)
		if !ok {
			return append(errs, fmt.Sprintf("%s: %T is not an array", at, val))
		}
		for i, e := range l {
			errs = append(errs, v.check(sm["items"], e, fmt.Sprintf("%s[%d]", at, i))...)
		}
	case "string":
		s, ok := val.(string)
		if !ok {
			return append(errs, fmt.Sprintf("%s: %T is not a string", at, val))
		}
		if p := asString(sm["pattern"]); p != "" && !regexp.MustCompile(p).MatchString(s) {
			errs = append(errs, fmt.Sprintf("%s: %q does not match %s", at, s, p))
		}
		if sm["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %q is not a date-time", at, s))
			}
		}
	case "integer", "number":
		n, ok := val.(json.Number)
		if !ok {
			return append(errs, fmt.Sprintf("%s: %T is not a number", at, val))
		}
		f, _ := n.Float64()
		if _, err := n.Int64(); t == "integer" && err != nil {
			errs = append(errs, fmt.Sprintf("%s: %s is not an integer", at, n))
		}
		if mn, ok := sm["minimum"].(int); ok && f < float64(mn) {
			errs = append(errs, fmt.Sprintf("%s: %s is below the minimum %d", at, n, mn))
		}
		if mx, ok := sm["maximum"].(int); ok && f > float64(mx) {
			errs = append(errs, fmt.Sprintf("%s: %s is above the maximum %d", at, n, mx))
		}
	case "boolean":
		if _, ok := val.(bool); !ok {
			errs = append(errs, fmt.Sprintf("%s: %T is not a boolean", at, val))
		}
	}
	return errs
}

// knownIssues are reported deviations of the handlers from the document,
// logged instead of failing until they are fixed.
var knownIssues = map[string]string{}

// client drives the handler and checks every answer against the document:
// the status must be documented for the operation, a JSON body must match
// the documented schema, and the documented headers must be present. A
// JSON request that succeeds must match the documented request schema.
type client struct {
	t     *testing.T
	h     http.Handler
	s     *spec
	v     validator
	ops   map[string]operation
	token string
	hit   map[string]bool
}

func newClient(t *testing.T, a *API) *client {
	s := loadSpec(t)
	return &client{t: t, h: a.Handler(), s: s, v: validator{s}, ops: s.operations(), hit: map[string]bool{}}
}

type reply struct {
	*httptest.ResponseRecorder
	json map[string]any
}

func (r reply) obj(key string) map[string]any { return asMap(r.json[key]) }

// call sends method to target, which is path (with the operation's
// template in place of each parameter: "GET /api/v1/files/{id}" with args)
// and checks the answer against the document.
func (c *client) call(want int, method, tmpl string, args []any, body any, hdr ...string) reply {
	c.t.Helper()
	path := tmpl
	for _, a := range args {
		i, j := strings.IndexByte(path, '{'), strings.IndexByte(path, '}')
		if i < 0 || j < i {
			c.t.Fatalf("%s %s: too many arguments", method, tmpl)
		}
		path = path[:i] + fmt.Sprint(a) + path[j+1:]
	}
	var rd io.Reader
	var reqJSON any
	ctype := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, ctype = bytes.NewReader(b), "application/octet-stream"
	case string:
		rd, ctype = strings.NewReader(b), "application/json"
		reqJSON = decodeJSON(c.t, []byte(b))
	default:
		js, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd, ctype = bytes.NewReader(js), "application/json"
		reqJSON = decodeJSON(c.t, js)
	}
	req := httptest.NewRequest(method, path, rd)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	rec := serve(c.h, req, c.token, hdr...)
	r := reply{ResponseRecorder: rec}
	route, _, _ := strings.Cut(tmpl, "?")
	key := method + " " + route
	if rec.Code != want {
		c.t.Fatalf("%s %s = %d, want %d: %s", method, path, rec.Code, want, rec.Body.String())
	}
	o, ok := c.ops[key]
	if !ok {
		c.t.Fatalf("%s is not documented", key)
	}
	c.hit[key] = true
	resp := c.s.response(o, rec.Code)
	if resp == nil {
		c.t.Errorf("%s answered %d, which the document does not list: %s", key, rec.Code, rec.Body.String())
		return r
	}
	for name := range asMap(resp["headers"]) {
		if rec.Header().Get(name) == "" {
			c.t.Errorf("%s %d: documented header %s is missing", key, rec.Code, name)
		}
	}
	content := asMap(resp["content"])
	gotType := rec.Header().Get("Content-Type")
	switch {
	case len(content) == 0:
		if rec.Body.Len() > 0 {
			c.t.Errorf("%s %d: a body (%s) where the document lists none", key, rec.Code, gotType)
		}
	case content["application/json"] != nil:
		if !strings.HasPrefix(gotType, "application/json") {
			if why, ok := knownIssues[fmt.Sprintf("%s %d Content-Type", key, rec.Code)]; ok {
				c.t.Logf("known issue: %s %d: Content-Type %q: %s", key, rec.Code, gotType, why)
			} else {
				c.t.Errorf("%s %d: Content-Type %q, documented application/json", key, rec.Code, gotType)
				break
			}
		}
		val := decodeJSON(c.t, rec.Body.Bytes())
		r.json = asMap(val)
		for _, e := range c.v.check(asMap(content["application/json"])["schema"], val, key+" "+strconv.Itoa(rec.Code)) {
			c.t.Error(e)
		}
	default:
		ok := false
		for mt := range content {
			ok = ok || mt == "*/*" || strings.HasPrefix(gotType, mt)
		}
		if !ok {
			c.t.Errorf("%s %d: Content-Type %q is not among %v", key, rec.Code, gotType, sortedKeys(content))
		}
	}
	if reqJSON != nil && rec.Code < 300 {
		rb := asMap(o.op["requestBody"])
		if rb == nil {
			c.t.Errorf("%s accepted a JSON body the document does not describe", key)
		} else if schema := asMap(asMap(asMap(rb["content"])["application/json"])["schema"]); schema == nil {
			c.t.Errorf("%s: no application/json request schema", key)
		} else {
			for _, e := range c.v.check(schema, reqJSON, key+" request") {
				c.t.Error(e)
			}
		}
	}
	return r
}

func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return v
}

func num(v any) int64 {
	n, _ := v.(json.Number).Int64()
	return n
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestOpenAPIResponsesConform drives every operation through the real
// handler and checks statuses, bodies and headers against the document.
func TestOpenAPIResponsesConform(t *testing.T) {
	a := newTestAPI(t, Deps{Version: "test"}, Config{})
	c := newClient(t, a)
	var none []any
	id := func(v ...any) []any { return v }

	// System.
	c.call(200, "GET", "/health", none, nil)
	c.call(200, "GET", "/ready", none, nil)
	c.call(200, "GET", "/metrics", none, nil)
	c.call(200, "GET", "/openapi.yaml", none, nil)
	c.call(200, "GET", "/docs", none, nil)
	c.call(200, "GET", "/.well-known/jwks.json", none, nil)

	// Auth.
	reg := c.call(201, "POST", "/api/v1/auth/register", none,
		map[string]any{"email": "alice@example.com", "password": "correct horse", "display_name": "Alice"})
	c.call(409, "POST", "/api/v1/auth/register", none, map[string]any{"email": "alice@example.com", "password": "another one"})
	c.call(400, "POST", "/api/v1/auth/register", none, map[string]any{"email": "bob@example.com", "password": "short"})
	c.call(400, "POST", "/api/v1/auth/register", none, `{"email": "bob@example.com", "password": "long enough", "extra": 1}`)
	c.call(413, "POST", "/api/v1/auth/register", none, `{"email": "`+strings.Repeat("x", maxJSON)+`"}`)
	login := c.call(200, "POST", "/api/v1/auth/login", none, map[string]any{"email": "Alice@example.com", "password": "correct horse"})
	c.call(401, "POST", "/api/v1/auth/login", none, map[string]any{"email": "alice@example.com", "password": "wrong password"})
	ref := c.call(200, "POST", "/api/v1/auth/refresh", none, map[string]any{"refresh_token": asString(login.json["refresh_token"])})
	c.call(400, "POST", "/api/v1/auth/refresh", none, map[string]any{"refresh_token": ""})
	c.call(401, "POST", "/api/v1/auth/refresh", none, map[string]any{"refresh_token": asString(login.json["refresh_token"])})
	c.call(200, "POST", "/api/v1/auth/logout", none, map[string]any{"refresh_token": asString(ref.json["refresh_token"])})
	c.call(401, "POST", "/api/v1/auth/logout", none, map[string]any{"refresh_token": "not a token"})
	c.call(401, "GET", "/api/v1/auth/me", none, nil)
	c.token = asString(reg.json["access_token"])
	me := c.call(200, "GET", "/api/v1/auth/me", none, nil)
	alice := num(me.obj("user")["id"])
	c.call(403, "PUT", "/api/v1/auth/password", none, map[string]any{"old_password": "wrong password", "new_password": "new password"})
	c.call(400, "PUT", "/api/v1/auth/password", none, map[string]any{"old_password": "correct horse", "new_password": "short"})
	c.call(200, "PUT", "/api/v1/auth/password", none, map[string]any{"old_password": "correct horse", "new_password": "new password"})

	// Files.
	content := []byte("hello, world\n")
	up := c.call(201, "POST", "/api/v1/files/upload", none, content, "X-File-Name", "hello.txt", "Content-Type", "text/plain")
	file := num(up.json["id"])
	c.call(400, "POST", "/api/v1/files/upload", none, content)
	c.call(404, "POST", "/api/v1/files/upload", none, content, "X-File-Name", "x.txt", "X-Folder-ID", "999999")
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	mw.WriteField("folder_id", "root")
	mw.WriteField("name", "form.bin")
	fw, _ := mw.CreateFormFile("file", "ignored.bin")
	fw.Write([]byte("form content"))
	mw.Close()
	c.call(201, "POST", "/api/v1/files/upload", none, form.Bytes(), "Content-Type", mw.FormDataContentType())
	c.call(200, "GET", "/api/v1/files", none, nil)
	c.call(200, "GET", "/api/v1/files?folder_id=root&page=1&page_size=500&sort=size&order=desc", none, nil)
	c.call(400, "GET", "/api/v1/files?page=0", none, nil)
	c.call(400, "GET", "/api/v1/files?sort=owner", none, nil)
	c.call(404, "GET", "/api/v1/files?folder_id=999999", none, nil)
	c.call(200, "GET", "/api/v1/files/{id}", id(file), nil)
	c.call(200, "GET", "/api/v1/files/{id}", id("root"), nil)
	c.call(400, "GET", "/api/v1/files/{id}", id("abc"), nil)
	c.call(404, "GET", "/api/v1/files/{id}", id(999999), nil)

	dl := c.call(200, "GET", "/api/v1/files/{id}/download", id(file), nil)
	if !bytes.Equal(dl.Body.Bytes(), content) {
		t.Errorf("download = %q", dl.Body.Bytes())
	}
	etag := dl.Header().Get("ETag")
	c.call(206, "GET", "/api/v1/files/{id}/download", id(file), nil, "Range", "bytes=0-4")
	c.call(206, "GET", "/api/v1/files/{id}/download", id(file), nil, "Range", "bytes=0-4", "If-Range", etag)
	c.call(304, "GET", "/api/v1/files/{id}/download", id(file), nil, "If-None-Match", etag)
	c.call(416, "GET", "/api/v1/files/{id}/download", id(file), nil, "Range", "bytes=100-")
	c.call(400, "GET", "/api/v1/files/{id}/download", id("root"), nil)
	c.call(404, "GET", "/api/v1/files/{id}/download", id(999999), nil)

	// Versions.
	c.call(201, "POST", "/api/v1/files/upload", none, []byte("hello again\n"), "X-File-Name", "hello.txt")
	vs := c.call(200, "GET", "/api/v1/files/{id}/versions", id(file), nil)
	if n := num(vs.json["total"]); n != 2 {
		t.Errorf("versions total = %d, want 2", n)
	}
	c.call(200, "GET", "/api/v1/files/{id}/versions/{version}/download", id(file, 1), nil)
	c.call(206, "GET", "/api/v1/files/{id}/versions/{version}/download", id(file, 1), nil, "Range", "bytes=-3")
	c.call(404, "GET", "/api/v1/files/{id}/versions/{version}/download", id(file, 9), nil)
	c.call(416, "GET", "/api/v1/files/{id}/versions/{version}/download", id(file, 1), nil, "Range", "bytes=0-1,3-4")
	c.call(304, "GET", "/api/v1/files/{id}/versions/{version}/download", id(file, 1), nil, "If-None-Match", "*")
	c.call(400, "GET", "/api/v1/files/{id}/versions/{version}/download", id(file, 0), nil)
	c.call(201, "POST", "/api/v1/files/{id}/versions/{version}/restore", id(file, 1), nil)
	c.call(404, "POST", "/api/v1/files/{id}/versions/{version}/restore", id(file, 9), nil)
	c.call(200, "DELETE", "/api/v1/files/{id}/versions/{version}", id(file, 2), nil)
	c.call(409, "DELETE", "/api/v1/files/{id}/versions/{version}", id(file, 3), nil)
	c.call(404, "DELETE", "/api/v1/files/{id}/versions/{version}", id(file, 2), nil)

	// Chunk-level reads.
	man := c.call(200, "GET", "/api/v1/files/{id}/manifest", id(file), nil)
	c.call(200, "GET", "/api/v1/files/{id}/manifest?version=1", id(file), nil)
	c.call(400, "GET", "/api/v1/files/{id}/manifest?version=0", id(file), nil)
	h0 := asString(asMap(asList(man.json["chunks"])[0])["hash"])
	c.call(200, "GET", "/api/v1/files/{id}/versions/{version}/chunks/{hash}", id(file, 3, h0), nil)
	c.call(404, "GET", "/api/v1/files/{id}/versions/{version}/chunks/{hash}", id(file, 3, strings.Repeat("0", 64)), nil)
	c.call(400, "GET", "/api/v1/files/{id}/versions/{version}/chunks/{hash}", id(file, 3, "xyz"), nil)

	// Tree operations.
	c.call(200, "PATCH", "/api/v1/files/{id}", id(file), map[string]any{"name": "renamed.txt"})
	c.call(400, "PATCH", "/api/v1/files/{id}", id("root"), map[string]any{"name": "x"})
	folder := num(c.call(201, "POST", "/api/v1/folders", none, map[string]any{"name": "docs"}).obj("folder")["id"])
	c.call(409, "POST", "/api/v1/folders", none, map[string]any{"name": "docs", "parent_id": nil})
	c.call(404, "POST", "/api/v1/folders", none, map[string]any{"name": "x", "parent_id": 999999})
	c.call(400, "POST", "/api/v1/folders", none, map[string]any{"name": "a/b"})
	sub := num(c.call(201, "POST", "/api/v1/folders", none, map[string]any{"name": "sub", "parent_id": strconv.FormatInt(folder, 10)}).obj("folder")["id"])
	c.call(200, "PUT", "/api/v1/files/{id}/move", id(file), map[string]any{"new_parent_id": folder})
	c.call(400, "PUT", "/api/v1/files/{id}/move", id(file), map[string]any{})
	c.call(200, "PUT", "/api/v1/files/{id}/move", id(file), map[string]any{"target_folder_id": "root"})
	cp := num(c.call(201, "POST", "/api/v1/files/{id}/copy", id(file), nil).obj("file")["id"])
	c.call(409, "POST", "/api/v1/files/{id}/copy", id(file), map[string]any{})
	c.call(201, "POST", "/api/v1/files/{id}/copy", id(file), map[string]any{"name": "copy.txt", "parent_id": folder})
	c.call(400, "POST", "/api/v1/files/{id}/copy", id(folder), nil)
	c.call(200, "GET", "/api/v1/folders/{id}", id(folder), nil)
	c.call(200, "GET", "/api/v1/folders/{id}/contents", id(folder), nil)
	c.call(200, "GET", "/api/v1/folders/{id}/contents?sort=updated_at&order=desc&page=2&page_size=1", id("root"), nil)
	c.call(400, "GET", "/api/v1/folders/{id}/contents", id(file), nil)
	c.call(200, "PATCH", "/api/v1/folders/{id}", id(folder), map[string]any{"name": "documents"})
	c.call(200, "PUT", "/api/v1/folders/{id}/move", id(sub), map[string]any{"new_parent_id": nil})
	c.call(200, "PUT", "/api/v1/folders/{id}/move", id(sub), map[string]any{"new_parent_id": folder})
	c.call(409, "PUT", "/api/v1/folders/{id}/move", id(folder), map[string]any{"new_parent_id": sub})
	c.call(409, "PATCH", "/api/v1/folders/{id}", id(sub), map[string]any{"parent_id": "root", "name": "renamed.txt"})
	c.call(400, "DELETE", "/api/v1/files/{id}", id(folder), nil)
	c.call(400, "DELETE", "/api/v1/folders/{id}", id(file), nil)
	c.call(400, "DELETE", "/api/v1/folders/{id}", id("root"), nil)
	c.call(200, "DELETE", "/api/v1/files/{id}", id(cp), nil)
	c.call(404, "DELETE", "/api/v1/files/{id}", id(cp), nil)
	c.call(200, "DELETE", "/api/v1/folders/{id}", id(sub), nil)

	// Trash.
	c.call(200, "GET", "/api/v1/trash", none, nil)
	c.call(200, "POST", "/api/v1/trash/{id}/restore", id(cp), nil)
	c.call(404, "POST", "/api/v1/trash/{id}/restore", id(cp), nil)
	c.call(200, "DELETE", "/api/v1/trash/{id}", id(sub), nil)
	c.call(404, "DELETE", "/api/v1/trash/{id}", id(file), nil)

	// Search and usage.
	c.call(200, "GET", "/api/v1/search?q=renamed", none, nil)
	c.call(200, "GET", "/api/v1/search?type=folder&after=2020-01-01&before=2100-01-01T00:00:00Z&folder_id=root", none, nil)
	c.call(200, "GET", "/api/v1/search?type=text/&min_size=1&max_size=100&page_size=1", none, nil)
	c.call(400, "GET", "/api/v1/search?min_size=abc", none, nil)
	c.call(400, "GET", "/api/v1/search?after=yesterday", none, nil)
	c.call(200, "GET", "/api/v1/storage/usage", none, nil)

	// Multipart.
	init := c.call(201, "POST", "/api/v1/files/upload/multipart/init", none,
		map[string]any{"file_name": "big.bin", "file_size": 10, "folder_id": folder, "mime_type": "application/x-big"})
	upload := asString(init.json["upload_id"])
	c.call(200, "PUT", "/api/v1/files/upload/multipart/{upload}/part/{part}", id(upload, 2), []byte("56789"))
	c.call(200, "PUT", "/api/v1/files/upload/multipart/{upload}/part/{part}", id(upload, 1), []byte("01234"))
	c.call(400, "PUT", "/api/v1/files/upload/multipart/{upload}/part/{part}", id(upload, 10001), []byte("x"))
	c.call(404, "PUT", "/api/v1/files/upload/multipart/{upload}/part/{part}", id("nope", 1), []byte("x"))
	c.call(200, "GET", "/api/v1/files/upload/multipart/{upload}", id(upload), nil)
	c.call(201, "POST", "/api/v1/files/upload/multipart/{upload}/complete", id(upload), map[string]any{"mime_type": "application/x-big"})
	c.call(404, "GET", "/api/v1/files/upload/multipart/{upload}", id(upload), nil)
	c.call(400, "POST", "/api/v1/files/upload/multipart/init", none, map[string]any{"file_name": "x", "file_size": -1})
	c.call(400, "POST", "/api/v1/files/upload/multipart/init", none, map[string]any{"file_name": ""})
	c.call(413, "POST", "/api/v1/files/upload/multipart/init", none, map[string]any{"file_name": "x", "file_size": int64(1) << 50})
	c.call(404, "POST", "/api/v1/files/upload/multipart/init", none, map[string]any{"file_name": "x", "folder_id": 999999})
	other := asString(c.call(201, "POST", "/api/v1/files/upload/multipart/init", none, map[string]any{"file_name": "gap.bin"}).json["upload_id"])
	c.call(200, "PUT", "/api/v1/files/upload/multipart/{upload}/part/{part}", id(other, 2), []byte("x"))
	c.call(400, "POST", "/api/v1/files/upload/multipart/{upload}/complete", id(other), nil)
	c.call(200, "DELETE", "/api/v1/files/upload/multipart/{upload}", id(other), nil)
	c.call(404, "DELETE", "/api/v1/files/upload/multipart/{upload}", id(other), nil)

	// Chunk-level writes and the change feed.
	c.call(200, "GET", "/api/v1/chunks/params", none, nil)
	data := []byte("a chunk sent by a smart client")
	h := sum(data)
	miss := c.call(200, "POST", "/api/v1/chunks/missing", none, map[string]any{"hashes": []string{h}})
	if l := asList(miss.json["missing"]); len(l) != 1 {
		t.Errorf("missing = %v, want the new hash", l)
	}
	c.call(400, "POST", "/api/v1/chunks/missing", none, map[string]any{"hashes": []string{"xyz"}})
	c.call(201, "PUT", "/api/v1/chunks/{hash}", id(h), data)
	c.call(200, "PUT", "/api/v1/chunks/{hash}", id(h), data)
	c.call(400, "PUT", "/api/v1/chunks/{hash}", id(strings.Repeat("a", 64)), data)
	c.call(413, "PUT", "/api/v1/chunks/{hash}", id(h), make([]byte, a.Files.Chunking().Max+1))
	commit := c.call(201, "POST", "/api/v1/files/commit", none, map[string]any{"name": "committed.txt", "folder_id": nil,
		"checksum": h, "mime_type": "text/plain", "mode": 0o600, "mtime": time.Now().UTC().Format(time.RFC3339),
		"chunks": []any{map[string]any{"hash": h, "size": len(data)}}})
	committed := num(commit.obj("file")["id"])
	c.call(400, "POST", "/api/v1/files/commit", none, map[string]any{"file_id": committed, "base_version": 1, "require_base": true,
		"checksum": h, "chunks": []any{map[string]any{"hash": h, "size": len(data)}, map[string]any{"hash": h, "size": len(data)}}})
	c.call(201, "POST", "/api/v1/files/commit", none, map[string]any{"file_id": committed, "base_version": 1, "require_base": true,
		"chunks": []any{map[string]any{"hash": h, "size": len(data)}, map[string]any{"hash": h, "size": len(data)}}})
	c.call(409, "POST", "/api/v1/files/commit", none, map[string]any{"file_id": strconv.FormatInt(committed, 10), "base_version": 1,
		"require_base": true, "checksum": h, "chunks": []any{}})
	c.call(409, "POST", "/api/v1/files/commit", none, map[string]any{"name": "ghost.txt", "checksum": h,
		"chunks": []any{map[string]any{"hash": strings.Repeat("b", 64), "size": 5}}})
	c.call(400, "POST", "/api/v1/files/commit", none, map[string]any{"name": "x.txt", "checksum": "nope", "chunks": []any{}})
	c.call(404, "POST", "/api/v1/files/commit", none, map[string]any{"file_id": 999999, "checksum": h, "chunks": []any{}})
	ch := c.call(200, "GET", "/api/v1/changes", none, nil)
	if len(asList(ch.json["changes"])) == 0 {
		t.Error("the change feed is empty")
	}
	c.call(200, "GET", "/api/v1/changes?wait=0&cursor={id}", id(num(ch.json["cursor"])), nil)
	// A change reports the X-DFMS-Origin of the request that made it; a
	// malformed origin is refused and changes nothing.
	c.call(201, "POST", "/api/v1/folders", none, map[string]any{"name": "from-a-mount"}, "X-DFMS-Origin", "mount-7.a_b")
	c.call(400, "POST", "/api/v1/folders", none, map[string]any{"name": "bad-origin"}, "X-DFMS-Origin", "no spaces")
	c.call(400, "POST", "/api/v1/folders", none, map[string]any{"name": "bad-origin"}, "X-DFMS-Origin", strings.Repeat("x", 65))
	after := c.call(200, "GET", "/api/v1/changes?wait=0&cursor={id}", id(num(ch.json["cursor"])), nil)
	if got := asList(after.json["changes"]); len(got) != 1 || got[0].(map[string]any)["origin"] != "mount-7.a_b" {
		t.Errorf("changes after a create with an origin = %v", got)
	}
	c.call(400, "GET", "/api/v1/changes?cursor=-1", none, nil)
	c.call(400, "GET", "/api/v1/changes?wait=soon", none, nil)

	// Administration.
	c.call(403, "GET", "/api/v1/admin/users", none, nil)
	if _, err := a.Auth.CreateUser(context.Background(), "admin@example.com", "admin password", "Admin", meta.RoleAdmin, 0); err != nil {
		t.Fatal(err)
	}
	c.token = ""
	c.token = asString(c.call(200, "POST", "/api/v1/auth/login", none,
		map[string]any{"email": "admin@example.com", "password": "admin password"}).json["access_token"])
	c.call(200, "GET", "/api/v1/admin/users", none, nil)
	c.call(200, "PATCH", "/api/v1/admin/users/{id}", id(alice), map[string]any{"quota_bytes": 5, "role": "user", "active": true})
	c.call(400, "PATCH", "/api/v1/admin/users/{id}", id("abc"), map[string]any{})
	c.call(400, "PATCH", "/api/v1/admin/users/{id}", id(alice), map[string]any{"role": "owner"})
	c.call(404, "PATCH", "/api/v1/admin/users/{id}", id(999999), map[string]any{})
	testNodesAPI(t, c, a)
	c.call(200, "GET", "/api/v1/admin/stats", none, nil)
	c.call(501, "POST", "/api/v1/admin/gc", none, nil)

	// Alice is over her new quota of 5 bytes.
	c.token = asString(c.call(200, "POST", "/api/v1/auth/login", none,
		map[string]any{"email": "alice@example.com", "password": "new password"}).json["access_token"])
	c.call(507, "POST", "/api/v1/files/upload", none, []byte("0123456789"), "X-File-Name", "big.txt")
	c.call(507, "POST", "/api/v1/files/{id}/copy", id(file), map[string]any{"name": "another copy.txt"})
	c.call(403, "POST", "/api/v1/admin/gc", none, nil)

	var untested []string
	for _, k := range sortedKeys(c.ops) {
		if !c.hit[k] {
			untested = append(untested, k)
		}
	}
	if len(untested) > 0 {
		t.Logf("operations not exercised by this test:\n\t%s", strings.Join(untested, "\n\t"))
	}
}

// fakeCluster is a cluster of storage nodes that allows every change
// unless err is set.
type fakeCluster struct{ err error }

func (f *fakeCluster) CheckChange(before, after []dfms.StorageNode) error { return f.err }

// testNodesAPI drives the storage node operations as an administrator
// (c's token): first on a server with a single chunk store (a's Cluster
// nil), which refuses every change, then as a cluster.
func testNodesAPI(t *testing.T, c *client, a *API) {
	var none []any
	id := func(v ...any) []any { return v }
	nodes := func() map[string]map[string]any {
		t.Helper()
		r := c.call(200, "GET", "/api/v1/admin/nodes", none, nil)
		if strings.Contains(r.Body.String(), "secret") {
			t.Errorf("node endpoints are not redacted: %s", r.Body.String())
		}
		out := map[string]map[string]any{}
		for _, n := range asList(r.json["nodes"]) {
			out[asString(asMap(n)["id"])] = asMap(n)
		}
		if int(num(r.json["total"])) != len(out) {
			t.Errorf("total %v with %d nodes", r.json["total"], len(out))
		}
		return out
	}
	state := func(r reply) string { return asString(r.obj("node")["state"]) }

	// A single chunk store: no nodes, and none added.
	if ns := nodes(); len(ns) != 0 {
		t.Fatalf("nodes of a server without a cluster: %v", ns)
	}
	n1 := map[string]any{"id": "n1", "endpoint": "s3://key:secret@minio:9000/chunks?secure=false", "weight": 50, "zone": "a"}
	for _, r := range []reply{
		c.call(409, "POST", "/api/v1/admin/nodes", none, n1),
		c.call(409, "PATCH", "/api/v1/admin/nodes/{id}", id("n1"), map[string]any{"weight": 1}),
		c.call(409, "POST", "/api/v1/admin/nodes/{id}/drain", id("n1"), nil),
		c.call(409, "POST", "/api/v1/admin/nodes/{id}/undrain", id("n1"), nil),
		c.call(409, "DELETE", "/api/v1/admin/nodes/{id}", id("n1"), nil),
	} {
		if msg := asString(asMap(r.json["error"])["message"]); !strings.Contains(msg, "configure storage.nodes") {
			t.Errorf("a node change without a cluster: %q, want it to say to configure storage.nodes", msg)
		}
	}
	if ns := nodes(); len(ns) != 0 {
		t.Fatalf("nodes after refused changes: %v", ns)
	}

	// A cluster.
	fc := &fakeCluster{}
	a.Cluster = fc
	if r := c.call(201, "POST", "/api/v1/admin/nodes", none, n1); state(r) != "up" || num(r.obj("node")["weight"]) != 50 {
		t.Errorf("added: %v", r.json)
	}
	c.call(200, "POST", "/api/v1/admin/nodes", none, n1) // a retry
	c.call(409, "POST", "/api/v1/admin/nodes", none, map[string]any{"id": "n1", "endpoint": "file:///srv/other"})
	if r := c.call(201, "POST", "/api/v1/admin/nodes", none, map[string]any{"id": "n2", "endpoint": "file:///srv/n2", "state": "draining"}); state(r) != "draining" || num(r.obj("node")["weight"]) != 100 {
		t.Errorf("added draining: %v", r.json)
	}
	for _, bad := range []string{
		`{"id": "n3"}`,
		`{"id": "n3", "endpoint": "grpc://chunks:9090"}`,
		`{"id": "n3", "endpoint": "/srv/n3"}`,
		`{"id": "n 3", "endpoint": "file:///srv/n3"}`,
		`{"id": "", "endpoint": "file:///srv/n3"}`,
		`{"id": "` + strings.Repeat("n", 129) + `", "endpoint": "file:///srv/n3"}`,
		`{"id": "n3", "endpoint": "file:///srv/n3", "weight": -1}`,
		`{"id": "n3", "endpoint": "file:///srv/n3", "zone": "` + strings.Repeat("z", 129) + `"}`,
		`{"id": "n3", "endpoint": "file:///srv/n3", "state": "down"}`,
		`{"id": "n3", "endpoint": "file:///srv/n3", "url": "file:///srv/n3"}`,
	} {
		c.call(400, "POST", "/api/v1/admin/nodes", none, bad)
	}
	ns := nodes()
	if len(ns) != 2 || ns["n1"]["zone"] != "a" || ns["n2"]["state"] != "draining" {
		t.Fatalf("nodes after adds: %v", ns)
	}

	// PATCH.
	if r := c.call(200, "PATCH", "/api/v1/admin/nodes/{id}", id("n1"), map[string]any{"weight": 10, "zone": "b"}); num(r.obj("node")["weight"]) != 10 || r.obj("node")["zone"] != "b" {
		t.Errorf("patched: %v", r.json)
	}
	c.call(200, "PATCH", "/api/v1/admin/nodes/{id}", id("n1"), map[string]any{"endpoint": "s3://key:secret2@minio2:9000/chunks"})
	c.call(400, "PATCH", "/api/v1/admin/nodes/{id}", id("n1"), map[string]any{"weight": -1})
	c.call(400, "PATCH", "/api/v1/admin/nodes/{id}", id("n1"), map[string]any{"endpoint": "grpc://x:1"})
	c.call(400, "PATCH", "/api/v1/admin/nodes/{id}", id("n1"), map[string]any{"state": "up"})
	c.call(400, "PATCH", "/api/v1/admin/nodes/{id}", id("bad$id"), map[string]any{"weight": 1})
	c.call(404, "PATCH", "/api/v1/admin/nodes/{id}", id("n9"), map[string]any{"weight": 1})
	fc.err = errors.New("too few nodes")
	c.call(409, "PATCH", "/api/v1/admin/nodes/{id}", id("n1"), map[string]any{"weight": 0})
	fc.err = nil
	if n := nodes()["n1"]; num(n["weight"]) != 10 || n["zone"] != "b" || !strings.Contains(asString(n["endpoint"]), "minio2") {
		t.Errorf("n1 after refused changes: %v", n)
	}

	// Drain and undrain.
	if r := c.call(200, "POST", "/api/v1/admin/nodes/{id}/drain", id("n1"), nil); state(r) != "draining" {
		t.Errorf("drained: %v", r.json)
	}
	c.call(200, "POST", "/api/v1/admin/nodes/{id}/drain", id("n1"), nil)
	if r := c.call(200, "POST", "/api/v1/admin/nodes/{id}/undrain", id("n1"), nil); state(r) != "up" {
		t.Errorf("undrained: %v", r.json)
	}
	c.call(404, "POST", "/api/v1/admin/nodes/{id}/drain", id("n9"), nil)
	c.call(404, "POST", "/api/v1/admin/nodes/{id}/undrain", id("n9"), nil)
	c.call(400, "POST", "/api/v1/admin/nodes/{id}/drain", id("bad$id"), nil)

	// Removal: only of a draining node without copies.
	m := a.Files.Meta()
	h := dfms.Sum([]byte("a copy on n2"))
	testkit.OK(t, m.ReserveChunks(context.Background(), []dfms.ChunkRef{{Hash: h, Size: 12}}))
	testkit.OK(t, m.AddChunks(context.Background(), []dfms.ChunkRef{{Hash: h, Size: 12}}))
	testkit.OK(t, m.AddReplicas(context.Background(), []dfms.Replica{{Hash: h, Node: "n2"}}))
	if n := nodes()["n2"]; num(n["chunks"]) != 1 || num(n["used_bytes"]) != 12 {
		t.Errorf("n2 with a copy: %v", n)
	}
	for node, want := range map[string]string{"n1": "drain it first", "n2": "1 chunk copies"} {
		r := c.call(409, "DELETE", "/api/v1/admin/nodes/{id}", id(node), nil)
		if msg := asString(asMap(r.json["error"])["message"]); !strings.Contains(msg, want) {
			t.Errorf("removal of %s: %q, want it to say %q", node, msg, want)
		}
	}
	testkit.OK(t, m.DropReplicas(context.Background(), []dfms.Replica{{Hash: h, Node: "n2"}}))
	fc.err = errors.New("too few nodes")
	c.call(409, "DELETE", "/api/v1/admin/nodes/{id}", id("n2"), nil)
	fc.err = nil
	c.call(204, "DELETE", "/api/v1/admin/nodes/{id}", id("n2"), nil)
	c.call(404, "DELETE", "/api/v1/admin/nodes/{id}", id("n2"), nil)
	c.call(400, "DELETE", "/api/v1/admin/nodes/{id}", id("bad$id"), nil)
	if ns := nodes(); len(ns) != 1 || ns["n1"] == nil {
		t.Fatalf("nodes after the removal: %v", ns)
	}
	a.Cluster = nil
}

// TestOpenAPIRateLimited checks the documented 429 and its headers.
func TestOpenAPIRateLimited(t *testing.T) {
	a := newTestAPI(t, Deps{Limiter: memory.New()}, Config{Limits: Limits{Auth: rateLimit(1)}})
	c := newClient(t, a)
	body := map[string]any{"email": "nobody@example.com", "password": "whatever it is"}
	r := c.call(401, "POST", "/api/v1/auth/login", nil, body)
	for _, hdr := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
		if r.Header().Get(hdr) == "" {
			t.Errorf("an allowed request lacks %s", hdr)
		}
	}
	c.call(429, "POST", "/api/v1/auth/login", nil, body)
}

func rateLimit(n int) ratelimit.Limit { return ratelimit.Limit{Requests: n, Window: time.Minute} }

// corruptStore serves flipped bytes for the chunks marked bad.
type corruptStore struct {
	dfms.ChunkStore
	mu  sync.Mutex
	bad map[dfms.Hash]bool
}

func (s *corruptStore) corrupt(h string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hash, _ := dfms.ParseHash(h)
	s.bad[hash] = true
}

func (s *corruptStore) Get(ctx context.Context, h dfms.Hash, buf []byte) ([]byte, error) {
	out, err := s.ChunkStore.Get(ctx, h, buf)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && s.bad[h] && len(out) > len(buf) {
		out[len(buf)] ^= 0xff
	}
	return out, err
}

// TestOpenAPICorruptData checks the documented answers to a chunk that
// fails verification before anything was sent.
func TestOpenAPICorruptData(t *testing.T) {
	cs := &corruptStore{bad: map[dfms.Hash]bool{}}
	a := newTestAPI(t, Deps{}, Config{}, func(s dfms.ChunkStore) dfms.ChunkStore { cs.ChunkStore = s; return cs })
	c := newClient(t, a)
	c.token = asString(c.call(201, "POST", "/api/v1/auth/register", nil,
		map[string]any{"email": "carol@example.com", "password": "carol's password"}).json["access_token"])
	content := []byte("soon to be corrupt")
	file := num(c.call(201, "POST", "/api/v1/files/upload", nil, content, "X-File-Name", "c.bin").json["id"])
	init := c.call(201, "POST", "/api/v1/files/upload/multipart/init", nil, map[string]any{"file_name": "m.bin"})
	upload := asString(init.json["upload_id"])
	part := []byte("a part soon to be corrupt")
	c.call(200, "PUT", "/api/v1/files/upload/multipart/{upload}/part/{part}", []any{upload, 1}, part)
	cs.corrupt(sum(content))
	cs.corrupt(sum(part))
	for _, r := range []reply{
		c.call(500, "GET", "/api/v1/files/{id}/download", []any{file}, nil),
		c.call(500, "GET", "/api/v1/files/{id}/versions/{version}/chunks/{hash}", []any{file, 1, sum(content)}, nil),
		c.call(500, "POST", "/api/v1/files/upload/multipart/{upload}/complete", []any{upload}, nil),
	} {
		if code := asMap(r.json["error"])["code"]; code != "DATA_CORRUPT" {
			t.Errorf("code %v, want DATA_CORRUPT", code)
		}
	}
}
