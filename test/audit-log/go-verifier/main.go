// An independent verifier of the audit log, built on Go's own
// golang.org/x/mod/sumdb/note (signed notes) and sumdb/tlog (RFC 6962
// hashing): go run main.go <verifier key> <checkpoint file> <entries file>.
// Prints "ok <size> <root>" or fails.
package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 4 {
		fail("usage: main <verifier key> <checkpoint file> <entries file>")
	}
	msg, err := os.ReadFile(os.Args[2])
	if err != nil {
		fail("%v", err)
	}
	entries, err := os.ReadFile(os.Args[3])
	if err != nil {
		fail("%v", err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(os.Args[1]))
	if err != nil {
		fail("verifier key: %v", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		fail("checkpoint: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || lines[0] != v.Name() {
		fail("checkpoint: bad origin or size")
	}
	var root tlog.Hash
	if b, err := base64.StdEncoding.DecodeString(lines[2]); err != nil || len(b) != len(root) {
		fail("checkpoint: bad root")
	} else {
		copy(root[:], b)
	}
	leaves := bytes.Split(bytes.TrimSuffix(entries, []byte("\n")), []byte("\n"))
	if int64(len(leaves)) != size {
		fail("%d entries for a checkpoint of %d", len(leaves), size)
	}
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			out[i] = stored[x]
		}
		return out, nil
	})
	for i, leaf := range leaves {
		hashes, err := tlog.StoredHashes(int64(i), leaf, reader)
		if err != nil {
			fail("%v", err)
		}
		stored = append(stored, hashes...)
	}
	th, err := tlog.TreeHash(size, reader)
	if err != nil {
		fail("%v", err)
	}
	if th != root {
		fail("root mismatch: computed %s, checkpoint %s", th, root)
	}
	// An inclusion proof of the last entry and a consistency proof from size 1, made and checked by tlog itself.
	last := size - 1
	rp, err := tlog.ProveRecord(size, last, reader)
	if err != nil {
		fail("%v", err)
	}
	if err := tlog.CheckRecord(rp, size, th, last, tlog.RecordHash(leaves[last])); err != nil {
		fail("record proof: %v", err)
	}
	fmt.Printf("ok %d %s\n", size, th)
}
