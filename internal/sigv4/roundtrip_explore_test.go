package sigv4

import (
	"net/http"
	"net/url"
	"testing"
)

func FuzzExploreRoundTrip(f *testing.F) {
	f.Add("a b", "x=1&y=a%20b", "/v1/apps/a%20b", "body")
	v := newVerifier(fixedClock)
	f.Fuzz(func(t *testing.T, hv, rawQuery, path, body string) {
		u, err := url.Parse("http://127.0.0.1:8080" + path)
		if err != nil || u.Host != "127.0.0.1:8080" {
			return
		}
		u.RawQuery = rawQuery
		req, err := http.NewRequest("POST", u.String(), nil)
		if err != nil {
			return
		}
		req.URL = u
		req.Header.Set("X-Custom", hv)
		defaultSigning().sign(t, req, []byte(body))
		if _, err := v.Verify(req, []byte(body)); err != nil {
			t.Fatalf("hv=%q q=%q path=%q escaped=%q: %v", hv, req.URL.RawQuery, path, req.URL.EscapedPath(), err)
		}
	})
}
