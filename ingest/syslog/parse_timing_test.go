package syslog

import (
	"testing"
)

func benchParse(b *testing.B, msg string) {
	p := NewParser(ParseOptions{})
	raw := []byte(msg)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		ev := p.Parse(raw, testNow)
		if ev.ParseError != "" {
			b.Fatal(ev.ParseError)
		}
	}
}

func BenchmarkParse5424(b *testing.B) {
	benchParse(b, `<165>1 2026-12-03T18:14:15.003Z cam-lobby-01.example.com evntslog 1234 ID47 [exampleSDID@32473 iut="3" eventSource="Application"] An application event log entry with a unique word`)
}

func BenchmarkParse3164(b *testing.B) {
	benchParse(b, `<34>Dec  3 18:14:15 cam-lobby-01 sshd[230]: Failed password for invalid user admin from 10.10.0.5 port 52811 ssh2`)
}
