package match

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/segwatch/segwatch/ingest/event"
)

// FuzzCompile: any query string either fails with *Error or compiles into a
// query whose Match, Block and Highlight do not panic, whose MatchAll is
// true only if Match accepts every sample event, and whose Block runs in
// bleve without error and selects the block of every event Match accepts.
func FuzzCompile(f *testing.F) {
	for _, c := range diffCases() {
		f.Add(c.q)
	}
	for _, s := range []string{`host:/a$/`, `"`, `a~2`, `sd.x:1`, `-`, `+`, `:`, `severity:-1`, `bytes:>1e30`, `time:>"2026"`} {
		f.Add(s)
	}
	evs := genEvents(200, 7)
	idx := newTestIndex(f, "scorch")
	indexEvents(f, idx, evs, 16)
	bl := blocks(evs, 16)
	blockOf := make([]string, len(evs))
	for b, idxs := range bl {
		for _, i := range idxs {
			blockOf[i] = docID("b", b)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Compile(s)
		if err != nil {
			var qe *Error
			if !errors.As(err, &qe) {
				t.Fatalf("Compile(%q) error %v is not *Error", s, err)
			}
			return
		}
		hits := searchIDs(t, idx, q.Block(), len(bl))
		all := true
		for i := range evs {
			if !q.Match(&evs[i]) {
				all = false
			} else if !hits[blockOf[i]] {
				t.Fatalf("Compile(%q).Block() misses block %s of matching event %d", s, blockOf[i], i)
			}
			_ = q.Highlight(evs[i].Message)
		}
		if q.MatchAll() && !all {
			t.Fatalf("Compile(%q).MatchAll() but Match rejects an event", s)
		}
	})
}

// FuzzTextMatch compares the allocation-free text matching (phrase search
// with its ASCII pre-check, prefix and case folding helpers) with the
// simple reference of the differential test on arbitrary text.
func FuzzTextMatch(f *testing.F) {
	f.Add("Login FAILED: user=root", "login failed")
	f.Add("src=10.20.0.11:443 failed.", "10.20.0.11:443")
	f.Add("\u212Aelvin FAİLED", "kelvin")
	f.Add("Überhitzung Lüfter", "LÜFTER")
	f.Add("a\xffb", "a")
	f.Fuzz(func(t *testing.T, msg, term string) {
		var toks []string
		Tokens(term, func(s string) { toks = append(toks, s) })
		if len(toks) > 0 {
			got := newTextPhrase(fieldByName["message"], toks).match(&event.Event{Message: msg})
			if want := refPhrase(msg, term); got != want && utf8.ValidString(msg) && utf8.ValidString(term) {
				t.Fatalf("phrase %q in %q = %v, want %v", term, msg, got, want)
			}
		}
		low := strings.ToLower(term)
		if eqLower(msg, low) != (strings.ToLower(msg) == low) {
			t.Fatalf("eqLower(%q, %q) wrong", msg, low)
		}
		if hasPrefixFold(msg, low) != strings.HasPrefix(strings.ToLower(msg), low) {
			t.Fatalf("hasPrefixFold(%q, %q) wrong", msg, low)
		}
		if low != "" && isASCII(low) {
			found, ascii := containsFoldASCII(msg, low)
			if ascii && found != strings.Contains(strings.ToLower(msg), low) {
				t.Fatalf("containsFoldASCII(%q, %q) = %v", msg, low, found)
			}
			// textPhrase's pre-check for letterless tokens.
			if !hasASCIILetter(low) && strings.Contains(msg, low) != strings.Contains(strings.ToLower(msg), low) {
				t.Fatalf("letterless %q: Contains in %q differs from Contains in its lower case", low, msg)
			}
		}
	})
}
