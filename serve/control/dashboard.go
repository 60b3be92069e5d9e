package control

import (
	"embed"
	"io/fs"
	"net/http"
)

// ui is the dashboard: a page and its script and style. They hold no
// data, so they are served without a token; every call the script makes
// to the API carries the token the user gives it.
//
//go:embed ui
var ui embed.FS

// dashboard serves the page at / and its files under /ui/, with headers
// that keep the page from running anything but its own script and from
// being framed.
func dashboard() http.Handler {
	files, _ := fs.Sub(ui, "ui")
	static := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		if r.URL.Path == "/" {
			http.ServeFileFS(w, r, files, "index.html")
			return
		}
		http.StripPrefix("/ui", static).ServeHTTP(w, r)
	})
}
