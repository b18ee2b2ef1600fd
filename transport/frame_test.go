package transport

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
)

func TestReadFrame(t *testing.T) {
	big := randomBytes(5<<20+3, 9)
	var in bytes.Buffer
	bw := bufio.NewWriter(&in)
	for _, p := range [][]byte{[]byte("hello"), nil, big, []byte("after")} {
		if err := writeFrame(bw, p); err != nil {
			t.Fatal(err)
		}
	}
	bw.Flush()
	br := bufio.NewReader(&in)
	buf := make([]byte, 0, 16)
	for i, want := range [][]byte{[]byte("hello"), {}, big, []byte("after")} {
		got, err := readFrame(br, 8<<20, buf)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: %d bytes, err %v", i, len(got), err)
		}
	}
	if _, err := readFrame(br, 8<<20, nil); err != io.EOF {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}

	for name, tc := range map[string]struct {
		in   []byte
		want error
	}{
		"over limit":        {cat(uv(1001), make([]byte, 1001)), errFrameTooLarge},
		"claims 2^64-1":     {uv(1<<64 - 1), errFrameTooLarge},
		"varint overflow":   {bytes.Repeat([]byte{0xff}, 11), nil},
		"truncated header":  {[]byte{0x80}, io.ErrUnexpectedEOF},
		"truncated body":    {cat(uv(10), []byte("abc")), io.ErrUnexpectedEOF},
		"truncated stepped": {cat(uv(900), make([]byte, 10)), io.ErrUnexpectedEOF},
	} {
		_, err := readFrame(bufio.NewReader(bytes.NewReader(tc.in)), 1000, nil)
		if err == nil || err == io.EOF || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
}

// A claimed frame larger than what arrives costs memory in proportion to what arrived, not to the claim.
func TestReadFrameStepsAllocation(t *testing.T) {
	in := cat(uv(200<<20), make([]byte, 100<<10)) // claims 200 MiB, sends 100 KiB
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := readFrame(bufio.NewReader(bytes.NewReader(in)), 256<<20, nil)
	runtime.ReadMemStats(&after)
	if err == nil || got != nil {
		t.Fatal("truncated frame returned data")
	}
	grew := after.TotalAlloc - before.TotalAlloc
	t.Logf("claimed 200 MiB, sent 100 KiB: %d KiB allocated", grew>>10)
	if grew > 1<<20 {
		t.Fatalf("allocated %d KiB", grew>>10)
	}
}

func TestStatusFrames(t *testing.T) {
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	writeStatus(bw, nil)
	writeStatus(bw, errors.New("nope"))
	writeStatus(bw, errors.New(string(bytes.Repeat([]byte("x"), 100<<10))))
	bw.Write([]byte{2, 7, 0})
	bw.Flush()
	br := bufio.NewReader(&b)
	if err := readStatus(br); err != nil {
		t.Fatal(err)
	}
	var re *RemoteError
	if err := readStatus(br); !errors.As(err, &re) || re.Msg != "nope" {
		t.Fatal(err)
	}
	if err := readStatus(br); !errors.As(err, &re) || len(re.Msg) != maxErrorText {
		t.Fatalf("long error: %v", len(re.Msg))
	}
	if err := readStatus(br); err == nil || errors.As(err, &re) {
		t.Fatalf("unknown status byte: %v", err)
	}
}

// A hello from a caller that predates the cluster ID ends after ToNodeID; it parses with cluster ID 0.
func TestHelloWithoutClusterID(t *testing.T) {
	b, err := Hello{FromID: 1, FromNodeID: "a", FromAddr: "x:1", FromClusterID: 0x1234, ToID: 2, ToNodeID: "b"}.marshal()
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseHello(b)
	if err != nil || h.FromClusterID != 0x1234 {
		t.Fatalf("with cluster ID: %+v, %v", h, err)
	}
	short, _ := Hello{FromID: 1, FromNodeID: "a", FromAddr: "x:1", ToID: 2, ToNodeID: "b"}.marshal()
	short = short[:len(short)-1] // drop the trailing zero cluster ID: the older encoding
	h, err = parseHello(short)
	if err != nil || h != (Hello{FromID: 1, FromNodeID: "a", FromAddr: "x:1", ToID: 2, ToNodeID: "b"}) {
		t.Fatalf("without cluster ID: %+v, %v", h, err)
	}
}
