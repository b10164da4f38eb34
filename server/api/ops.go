package api

import (
	"context"
	_ "embed"
	"html/template"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

//go:embed openapi.yaml
var openAPISpec []byte

func (a *API) health(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok", "service": "dfms", "version": a.Version})
}

// ready checks every configured dependency, each within 3 s.
func (a *API) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{}
	status, state := http.StatusOK, "ready"
	for name, check := range a.Ready {
		if err := check(ctx); err != nil {
			checks[name] = err.Error()
			status, state = http.StatusServiceUnavailable, "not_ready"
			continue
		}
		checks[name] = "ok"
	}
	c.JSON(status, gin.H{"status": state, "checks": checks})
}

func (a *API) openAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/yaml", openAPISpec)
}

func (a *API) jwks(c *gin.Context) {
	b, err := a.Keys.JWKS()
	if err != nil {
		a.Log.Error("jwks", "err", err)
		a.failCode(c, http.StatusInternalServerError, "INTERNAL_ERROR", "internal error")
		return
	}
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, "application/json", b)
}

// docsPage renders the OpenAPI document as a plain page: no scripts from
// elsewhere, so it works offline and under a strict CSP.
var docsPage = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DFMS API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em}
pre{background:#f6f8fa;padding:1em;overflow:auto;font-size:13px}</style></head>
<body><h1>DFMS REST API</h1>
<p>The machine-readable specification is at <a href="{{.URL}}">/openapi.yaml</a> (OpenAPI 3); load it in any OpenAPI viewer or client generator. It is reproduced below.</p>
<pre>{{printf "%s" .Spec}}</pre></body></html>`))

func (a *API) docs(c *gin.Context) {
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Status(http.StatusOK)
	docsPage.Execute(c.Writer, struct {
		URL  string
		Spec []byte
	}{"/openapi.yaml", openAPISpec})
}
