package netflow

import "testing"

func TestCheckVarRecords(t *testing.T) {
	lengths := []uint16{4, 0xffff} // an address, then a variable-length name
	f := func(set []byte, wantErr bool) {
		t.Helper()
		if err := checkVarRecords(set, lengths); (err != nil) != wantErr {
			t.Fatalf("checkVarRecords(%v) = %v, want error %v", set, err, wantErr)
		}
	}
	f([]byte{10, 0, 0, 1, 4, 'e', 't', 'h', '0'}, false)
	f([]byte{10, 0, 0, 1, 4, 'e', 't', 'h', '0', 0, 0, 0}, false)            // padding shorter than a record
	f([]byte{10, 0, 0, 1, 200, 'e', 't', 'h', '0'}, true)                    // length past the set
	f([]byte{10, 0, 0, 1, 255, 0, 9, 'e', 't', 'h'}, true)                   // long form past the set
	f([]byte{10, 0, 0, 1, 255, 0, 3, 'e', 't', 'h'}, false)                  // long form that fits
	f([]byte{10, 0, 0, 1, 0, 10, 0, 0, 2, 2, 'a', 'b'}, false)               // two records
	f([]byte{10, 0, 0, 1, 0, 10, 0, 0, 2, 3, 'a', 'b'}, true)                // second record cut
	if err := checkVarRecords([]byte{1, 2, 3}, []uint16{4, 4}); err != nil { // fixed lengths: not walked
		t.Fatal(err)
	}
}

func TestIPFIXTemplateLengths(t *testing.T) {
	set := []byte{
		1, 44, 0, 2, // template 300, 2 fields
		0, 8, 0, 4, // sourceIPv4Address, 4 bytes
		0x80, 82, 0xff, 0xff, 0, 0, 0x1f, 0x90, // enterprise field, variable length
	}
	m := ipfixTemplateLengths(set, nil)
	if got := m[300]; len(got) != 2 || got[0] != 4 || got[1] != 0xffff {
		t.Fatalf("lengths = %v", got)
	}
	if m := ipfixTemplateLengths(set[:10], nil); len(m) != 0 {
		t.Fatalf("cut template gave %v", m)
	}
}
