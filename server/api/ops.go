package api

import (
	_ "embed"
	"html/template"
	"net/http"

	"github.com/gin-gonic/gin"
)

//go:embed openapi.yaml
var openAPISpec []byte

// health and ready are the ops endpoints every role serves (package ops).
func (a *API) health(c *gin.Context) { a.ops.Health(c.Writer, c.Request) }

func (a *API) ready(c *gin.Context) {
	status, body := a.ops.CheckReady(c.Request.Context())
	c.JSON(status, body)
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
