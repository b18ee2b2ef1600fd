package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"time"
)

// Bulk data (snapshots, stream rpc responses) travels as chunk frames, an empty frame, and a trailer with
// a CRC32-Castagnoli of the data (plus its length, for snapshots). Chunking lets both ends stream without
// knowing the size up front; the trailer lets the receiver refuse data that was damaged or cut.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errChecksum = errors.New("checksum mismatch")

// chunkWriter turns writes into chunk frames and tracks the length and CRC for the trailer.
type chunkWriter struct {
	bw    *bufio.Writer
	conn  net.Conn      // for write deadlines; nil disables them
	idle  time.Duration // longest a single chunk write may block
	total uint64
	crc   uint32
	err   error // sticky: after a failed write the stream is unusable
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := 0
	for len(p) > 0 { // an empty Write must not emit an empty frame: that is the terminator
		c := p[:min(len(p), sendChunk)]
		w.deadline()
		if err := writeFrame(w.bw, c); err != nil {
			w.err = err
			return n, err
		}
		w.crc = crc32.Update(w.crc, castagnoli, c)
		w.total += uint64(len(c))
		n += len(c)
		p = p[len(c):]
	}
	return n, nil
}

func (w *chunkWriter) deadline() {
	if w.conn != nil {
		_ = w.conn.SetWriteDeadline(time.Now().Add(w.idle))
	}
}

// finish writes the terminator and trailer and flushes.
func (w *chunkWriter) finish(withLength bool) error {
	if w.err != nil {
		return w.err
	}
	var tr [1 + 8 + 4]byte // tr[0] = 0 is the empty terminator frame
	n := 1
	if withLength {
		binary.BigEndian.PutUint64(tr[n:], w.total)
		n += 8
	}
	binary.BigEndian.PutUint32(tr[n:], w.crc)
	n += 4
	w.deadline()
	if _, err := w.bw.Write(tr[:n]); err != nil {
		w.err = err
		return err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = err
		return err
	}
	return nil
}

// chunkReader yields the data of a chunked stream. It returns io.EOF only after the trailer has verified;
// a cut stream, an oversized chunk or a checksum mismatch is a (sticky) non-EOF error.
type chunkReader struct {
	br         *bufio.Reader
	conn       net.Conn      // for read deadlines; nil disables them
	idle       time.Duration // longest silence tolerated between reads
	hard       time.Time     // deadlines never extend past this (the caller's ctx deadline); zero = none
	withLength bool          // the trailer carries the 8-byte length (snapshots)
	what       string        // names the stream in errors

	left  int // bytes left in the current chunk
	total uint64
	crc   uint32
	err   error
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for r.left == 0 {
		r.deadline()
		n, err := binary.ReadUvarint(r.br)
		if err != nil {
			r.err = r.cut(err)
			return 0, r.err
		}
		if n == 0 {
			r.err = r.finish()
			return 0, r.err
		}
		if n > maxChunk {
			r.err = fmt.Errorf("%s: %w: chunk of %d bytes, limit %d", r.what, errFrameTooLarge, n, maxChunk)
			return 0, r.err
		}
		r.left = int(n)
	}
	if len(p) > r.left {
		p = p[:r.left]
	}
	r.deadline()
	k, err := r.br.Read(p)
	r.crc = crc32.Update(r.crc, castagnoli, p[:k])
	r.total += uint64(k)
	r.left -= k
	if err != nil {
		r.err = r.cut(err)
		return k, r.err
	}
	return k, nil
}

func (r *chunkReader) deadline() {
	if r.conn == nil || r.idle <= 0 {
		return
	}
	d := time.Now().Add(r.idle)
	if !r.hard.IsZero() && r.hard.Before(d) {
		d = r.hard
	}
	_ = r.conn.SetReadDeadline(d)
}

// done reports whether the stream ended with a verified trailer.
func (r *chunkReader) done() bool { return r.err == io.EOF }

func (r *chunkReader) cut(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%s cut after %d bytes: %w", r.what, r.total, err)
}

func (r *chunkReader) finish() error {
	var tr [8 + 4]byte
	n := 4
	if r.withLength {
		n = 12
	}
	if _, err := io.ReadFull(r.br, tr[:n]); err != nil {
		return r.cut(err)
	}
	if r.withLength {
		if got := binary.BigEndian.Uint64(tr[:8]); got != r.total {
			return fmt.Errorf("%s: %w: received %d bytes, sender wrote %d", r.what, errChecksum, r.total, got)
		}
	}
	if got := binary.BigEndian.Uint32(tr[n-4 : n]); got != r.crc {
		return fmt.Errorf("%s: %w: crc32c %08x, sender's %08x", r.what, errChecksum, r.crc, got)
	}
	return io.EOF
}
