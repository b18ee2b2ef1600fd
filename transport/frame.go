package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/raftlite/raftlite/errcode"
	"io"
	"slices"
)

var errFrameTooLarge = errors.New("frame too large")

// readFrame reads one [uvarint length][bytes] frame, reusing buf when it is big enough. The claimed length is
// checked against limit before anything is allocated, and frames above frameStep are read in growing steps,
// so a peer that claims a huge frame but sends little costs us little.
func readFrame(br *bufio.Reader, limit int, buf []byte) ([]byte, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		if err == io.EOF {
			return nil, io.EOF // clean end between frames
		}
		return nil, fmt.Errorf("frame header: %w", err)
	}
	if n > uint64(limit) {
		return nil, fmt.Errorf("%w: %d bytes claimed, limit %d", errFrameTooLarge, n, limit)
	}
	size := int(n)
	if size <= cap(buf) {
		buf = buf[:size]
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, truncated(err, size)
		}
		return buf, nil
	}
	buf = buf[:0]
	for len(buf) < size {
		step := min(size-len(buf), max(len(buf), frameStep))
		buf = slices.Grow(buf, step)
		k, err := io.ReadFull(br, buf[len(buf):len(buf)+step])
		buf = buf[:len(buf)+k]
		if err != nil {
			return nil, truncated(err, size)
		}
	}
	return buf, nil
}

// truncated turns an EOF inside a frame body into ErrUnexpectedEOF: the header promised more.
func truncated(err error, size int) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("frame body (%d bytes): %w", size, err)
}

func writeFrameHeader(bw *bufio.Writer, n int) error {
	var hdr [binary.MaxVarintLen64]byte
	_, err := bw.Write(hdr[:binary.PutUvarint(hdr[:], uint64(n))])
	return err
}

// writeFrame buffers one frame; the caller flushes.
func writeFrame(bw *bufio.Writer, p []byte) error {
	if err := writeFrameHeader(bw, len(p)); err != nil {
		return err
	}
	_, err := bw.Write(p)
	return err
}

// writeTaggedFrame buffers the frame [tag][p] without copying p (rpc requests and responses).
func writeTaggedFrame(bw *bufio.Writer, tag byte, p []byte) error {
	if err := writeFrameHeader(bw, 1+len(p)); err != nil {
		return err
	}
	if err := bw.WriteByte(tag); err != nil {
		return err
	}
	_, err := bw.Write(p)
	return err
}

// frameBuffered reports whether a complete frame is already in br's buffer, i.e. can be read without
// waiting on the network. The raft reader keeps batching while this holds.
func frameBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	n, k := binary.Uvarint(b)
	return k > 0 && uint64(len(b)-k) >= n
}

// writeStatus buffers a status frame: OK when err is nil, otherwise err's text (truncated to fit).
func writeStatus(bw *bufio.Writer, err error) error {
	if err == nil {
		return writeFrame(bw, []byte{statusOK})
	}
	tag, payload := errorFrame(err)
	return writeTaggedFrame(bw, tag, payload)
}

// errorFrame is the status byte and payload that carry err: its code, if it has one, and its text.
func errorFrame(err error) (byte, []byte) {
	if code := errcode.WireCode(err); code != 0 {
		return statusCodedError, append([]byte{code}, errorText(err)...)
	}
	return statusError, []byte(errorText(err))
}

// remoteError rebuilds the error a status byte and payload carry; ok is false for a status that is not an
// error.
func remoteError(status byte, payload []byte) (err *RemoteError, ok bool) {
	switch status {
	case statusError:
		return &RemoteError{Msg: string(payload)}, true
	case statusCodedError:
		if len(payload) == 0 {
			return &RemoteError{Msg: "coded error without a code"}, true
		}
		return &RemoteError{Code: payload[0], Msg: string(payload[1:])}, true
	}
	return nil, false
}

func errorText(err error) string {
	s := err.Error()
	if len(s) > maxErrorText {
		s = s[:maxErrorText]
	}
	return s
}

// readStatus reads a status frame: nil for OK, *RemoteError for an error status.
func readStatus(br *bufio.Reader) error {
	f, err := readFrame(br, maxStatusFrame, nil)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("read status: %w", err)
	}
	return parseStatus(f)
}

func parseStatus(f []byte) error {
	if len(f) == 0 {
		return errors.New("empty status frame")
	}
	if f[0] == statusOK {
		return nil
	}
	if re, ok := remoteError(f[0], f[1:]); ok {
		return re
	}
	return fmt.Errorf("unknown status byte %d", f[0])
}
