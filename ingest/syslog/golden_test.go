package syslog

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestGoldenEvents parses every message of testdata/golden/messages.json
// (a JSON array of strings, so control bytes can be written down) and
// compares the events, in their API JSON form (SPEC §4), with
// events.golden.json. Run with -update after an intended change and review
// the diff.
func TestGoldenEvents(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "golden", "messages.json"))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	if err := json.Unmarshal(in, &msgs); err != nil {
		t.Fatalf("messages.json: %v", err)
	}
	p := NewParser(ParseOptions{})
	var out bytes.Buffer
	out.WriteString("[\n")
	for i, m := range msgs {
		b, err := json.Marshal(p.Parse([]byte(m), testNow))
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		out.WriteString("  ")
		out.Write(b)
		if i < len(msgs)-1 {
			out.WriteByte(',')
		}
		out.WriteByte('\n')
	}
	out.WriteString("]\n")
	golden := filepath.Join("testdata", "golden", "events.golden.json")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGoldenEvents -update)", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("events differ from %s; run with -update and review the diff:\n%s", golden, out.Bytes())
	}
}
