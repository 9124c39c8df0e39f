package match

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// asciiToken[c] is true for the ASCII bytes that may be part of a token:
// letters, digits and the three punctuation marks that hold IPs, host names
// and versions together. A table because the tokenizer runs on every byte
// of every candidate message.
var asciiToken = func() (t [utf8.RuneSelf]bool) {
	for c := range utf8.RuneSelf {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == '-'
	}
	return t
}()

// isTokenRune reports whether r may be part of a token.
func isTokenRune(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiToken[r]
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// isTrimRune reports whether r is cut from both ends of a token, so that
// "failed." and "-v" give "failed" and "v" while "10.0.0.1" stays whole.
func isTrimRune(b byte) bool { return b == '.' || b == '-' }

// nextToken returns the bounds of the first token of s at or after i, or
// start == -1 when there is none. It never allocates: Match runs it on every
// candidate event.
func nextToken(s string, i int) (start, end int) {
	for i < len(s) {
		// Skip separators.
		for i < len(s) {
			c := s[i]
			if c < utf8.RuneSelf {
				if asciiToken[c] {
					break
				}
				i++
				continue
			}
			r, n := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError && isTokenRune(r) {
				break
			}
			i += n
		}
		start = i
		for i < len(s) {
			c := s[i]
			if c < utf8.RuneSelf {
				if !asciiToken[c] {
					break
				}
				i++
				continue
			}
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError || !isTokenRune(r) {
				break
			}
			i += n
		}
		end = i
		for start < end && isTrimRune(s[start]) {
			start++
		}
		for end > start && isTrimRune(s[end-1]) {
			end--
		}
		if start < end {
			return start, end
		}
	}
	return -1, -1
}

// Tokens is the message analyzer: it calls emit for every token of text, in
// order. A token is a maximal run of letters, digits, '.', '_' and '-', with
// leading and trailing '.' and '-' removed, lower-cased. So
// "src=10.20.0.11:443 failed." gives src, 10.20.0.11, 443, failed.
// The string passed to emit may share memory with text.
func Tokens(text string, emit func(tok string)) {
	for i := 0; ; {
		s, e := nextToken(text, i)
		if s < 0 {
			return
		}
		emit(lower(text[s:e]))
		i = e
	}
}

// lower lower-cases s without allocating when it already is lower case (the
// common case for IoT logs).
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// eqLower reports whether strings.ToLower(s) == low without allocating; low
// must already be lower case.
func eqLower(s, low string) bool {
	// Fast path: plain ASCII of the same length.
	if len(s) == len(low) {
		i := 0
		for ; i < len(s); i++ {
			c := s[i]
			if c >= utf8.RuneSelf {
				break
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != low[i] {
				return false
			}
		}
		if i == len(s) {
			return true
		}
	}
	j := 0
	for _, r := range s {
		if j >= len(low) {
			return false
		}
		r2, n := utf8.DecodeRuneInString(low[j:])
		if unicode.ToLower(r) != r2 {
			return false
		}
		j += n
	}
	return j == len(low)
}

// isASCII reports whether s is plain ASCII.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// containsFoldASCII reports whether s contains t ignoring ASCII case; t must
// be lower-case ASCII and not empty. ascii is false (and found meaningless)
// when s holds a non-ASCII byte, because Unicode lower-casing can turn such
// characters into ASCII letters (U+212A KELVIN SIGN is k): the caller must
// then take the slow path. It is the cheap pre-check that lets Match reject
// most messages without tokenizing them.
func containsFoldASCII(s, t string) (found, ascii bool) {
	c0 := t[0]
	u0 := c0
	if 'a' <= c0 && c0 <= 'z' {
		u0 = c0 - ('a' - 'A')
	}
	last := len(s) - len(t)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return false, false
		}
		if (c == c0 || c == u0) && i <= last && eqFoldASCII(s[i+1:i+len(t)], t[1:]) {
			return true, true
		}
	}
	return false, true
}

// eqFoldASCII compares ASCII s with lower-case ASCII t ignoring case.
func eqFoldASCII(s, t string) bool {
	for i := 0; i < len(t); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != t[i] {
			return false
		}
	}
	return true
}

// hasPrefixFold reports whether strings.ToLower(s) starts with the
// lower-case prefix p, without allocating.
func hasPrefixFold(s, p string) bool {
	if len(s) >= len(p) && isASCII(s[:len(p)]) {
		return eqFoldASCII(s[:len(p)], p)
	}
	j := 0
	for _, r := range s {
		if j == len(p) {
			return true
		}
		r2, n := utf8.DecodeRuneInString(p[j:])
		if unicode.ToLower(r) != r2 {
			return false
		}
		j += n
	}
	return j == len(p)
}
