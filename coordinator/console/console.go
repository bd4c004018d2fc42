package console

import (
	"embed"
	"io/fs"
	"net/http"
)

// Path is where the console is mounted on the coordinator.
const Path = "/ui/"

//go:embed static
var static embed.FS

// Files returns the console's files (index.html, app.js, style.css).
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	return sub
}

// Handler serves the console under Path. Every page is index.html with the
// view chosen by the URL fragment (#/, #/transactions, #/tx/ID), so that
// links work without server routes. The files carry no external reference:
// the console works with no network beyond the coordinator.
func Handler() http.Handler {
	files := http.StripPrefix(Path, http.FileServerFS(Files()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		files.ServeHTTP(w, r)
	})
}
