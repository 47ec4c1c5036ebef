package serve

import (
	"bytes"
	"crypto/sha256"
	_ "embed" // the web page
	"encoding/base64"
	"net/http"
	"strconv"
)

// indexHTML is the web page: one file, inline CSS and JavaScript, no external assets.
//
//go:embed index.html
var indexHTML []byte

// page serves the web page with a Content-Security-Policy that allows its one inline script
// (by hash), its inline styles and requests to this server only.
type page struct {
	csp string
}

func newPage() page {
	csp := "default-src 'none'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	if script, ok := inlineScript(indexHTML); ok {
		sum := sha256.Sum256(script)
		csp += "; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	return page{csp: csp}
}

// inlineScript returns the text between the page's <script> and </script>.
func inlineScript(html []byte) ([]byte, bool) {
	_, rest, ok := bytes.Cut(html, []byte("<script>"))
	if !ok {
		return nil, false
	}
	script, _, ok := bytes.Cut(rest, []byte("</script>"))
	return script, ok
}

func (p page) serve(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(indexHTML)))
	h.Set("Content-Security-Policy", p.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	w.Write(indexHTML)
}
