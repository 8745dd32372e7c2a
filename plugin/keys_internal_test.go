package plugin

import (
	"bytes"
	"testing"
)

// TestMACsUnderEveryKey: the Env's MACs are the MAC under each configured
// key, current first, so that a flow finds what an older key stored.
func TestMACsUnderEveryKey(t *testing.T) {
	oldKey, newKey := []byte("the old key, 32 bytes long......"), []byte("the new key, 32 bytes long......")
	old, err := newKeyring([][]byte{oldKey})
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := newKeyring([][]byte{newKey, oldKey})
	if err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{[]byte("u-alice"), []byte("code")}
	e := env{p: &Plugin{keys: rotated}}
	macs := e.MACs("recovery code", parts...)
	if len(macs) != 2 {
		t.Fatalf("%d MACs for two keys", len(macs))
	}
	if !bytes.Equal(macs[0], e.MAC("recovery code", parts...)) {
		t.Fatal("the first MAC is not the current key's")
	}
	if !bytes.Equal(macs[1], old.mac("recovery code", parts...)) {
		t.Fatal("the second MAC is not the old key's")
	}
	if bytes.Equal(macs[0], macs[1]) {
		t.Fatal("two keys give the same MAC")
	}
	if one := (env{p: &Plugin{keys: old}}).MACs("recovery code", parts...); len(one) != 1 || !bytes.Equal(one[0], macs[1]) {
		t.Fatalf("one key: %d MACs", len(one))
	}
}
