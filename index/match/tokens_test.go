package match

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2/mapping"
)

func collect(text string) []string {
	var out []string
	Tokens(text, func(t string) { out = append(out, t) })
	return out
}

func TestTokens(t *testing.T) {
	f := func(in string, want ...string) {
		t.Helper()
		if got := collect(in); !slices.Equal(got, want) {
			t.Errorf("Tokens(%q) = %q, want %q", in, got, want)
		}
	}
	f("")
	f("   ,;:!")
	f("src=10.20.0.11:443 failed.", "src", "10.20.0.11", "443", "failed")
	f("Login FAILED: user=root", "login", "failed", "user", "root")
	f("-v --verbose ...", "v", "verbose")
	f("a.-b._c-", "a.-b._c")
	f("_under_ score_", "_under_", "score_")
	f("cam-lobby-01 fw 10.12.1", "cam-lobby-01", "fw", "10.12.1")
	f("Überhitzung Lüfter", "überhitzung", "lüfter")
	f("<b>&amp;</b>", "b", "amp", "b")
	f("user@example.com", "user", "example.com")
	f("a\xffb", "a", "b")
	f("日本語 テスト", "日本語", "テスト")
	f("x\u0301y", "x", "y") // a combining mark separates
}

func TestEqLower(t *testing.T) {
	for _, s := range []string{"", "abc", "ABC", "Cam-01", "ÜBER", "straße", "İstanbul", "a\xffb", "K", "ǅ"} {
		low := strings.ToLower(s)
		if !eqLower(s, low) {
			t.Errorf("eqLower(%q, %q) = false", s, low)
		}
		if eqLower(s, low+"x") || (low != "" && eqLower(s, low[:len(low)-1])) {
			t.Errorf("eqLower(%q) accepts a different string", s)
		}
	}
}

// bleveTokens analyses text with the TextAnalyzer registered in Mapping.
func bleveTokens(t testing.TB, text string) []string {
	im := Mapping().(*mapping.IndexMappingImpl)
	a := im.AnalyzerNamed(TextAnalyzer)
	if a == nil {
		t.Fatal("TextAnalyzer not registered")
	}
	var out []string
	for _, tok := range a.Analyze([]byte(text)) {
		out = append(out, string(tok.Term))
	}
	return out
}

func TestTextAnalyzerAgrees(t *testing.T) {
	for _, s := range []string{"src=10.20.0.11:443 failed.", "-v --x a.-b._c-", "Überhitzung Lüfter", "<b>&amp;</b>"} {
		if got, want := bleveTokens(t, s), collect(s); !slices.Equal(got, want) {
			t.Errorf("%q: bleve %q, Tokens %q", s, got, want)
		}
	}
}

func FuzzTokens(f *testing.F) {
	for _, s := range []string{"src=10.20.0.11:443 failed.", "-v --verbose", "Überhitzung", "a\xffb", "..-..", "x\u0301y"} {
		f.Add(s)
	}
	im := Mapping().(*mapping.IndexMappingImpl)
	a := im.AnalyzerNamed(TextAnalyzer)
	f.Fuzz(func(t *testing.T, s string) {
		toks := collect(s)
		for _, tok := range toks {
			if tok == "" || tok != strings.ToLower(tok) {
				t.Fatalf("bad token %q", tok)
			}
			if strings.Trim(tok, ".-") != tok {
				t.Fatalf("untrimmed token %q", tok)
			}
			if !utf8.ValidString(tok) {
				t.Fatalf("invalid UTF-8 token %q", tok)
			}
			// Every token is found again by a phrase search of itself.
			if !hasPhrase(s, []string{tok}) {
				t.Fatalf("hasPhrase(%q, %q) = false", s, tok)
			}
		}
		if len(toks) > 0 && !hasPhrase(s, toks) {
			t.Fatalf("hasPhrase(%q, all tokens) = false", s)
		}
		if utf8.ValidString(s) {
			var got []string
			for _, tok := range a.Analyze([]byte(s)) {
				got = append(got, string(tok.Term))
			}
			if !slices.Equal(got, toks) {
				t.Fatalf("bleve analyzer %q, Tokens %q", got, toks)
			}
		}
	})
}

func TestHasPrefixFold(t *testing.T) {
	for _, s := range []string{"", "FAILED", "failed", "fa", "Überhitzung", "über", "ÜB", "a\xffb", "\u212Aelvin"} {
		for _, p := range []string{"f", "fail", "failed", "failedx", "üb", "über", "a\ufffd", "kel"} {
			want := strings.HasPrefix(strings.ToLower(s), p)
			if got := hasPrefixFold(s, p); got != want {
				t.Errorf("hasPrefixFold(%q, %q) = %v, want %v", s, p, got, want)
			}
		}
	}
}
