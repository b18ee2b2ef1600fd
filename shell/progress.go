package shell

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress draws a one-line bar for a transfer: bytes so far, of how many, and the rate. It redraws a few
// times a second and is silent when the shell's error output is not a terminal.
type progress struct {
	w     io.Writer
	label string
	total int64 // -1: unknown
	n     atomic.Int64
	start time.Time
	stop  chan struct{}
	done  sync.WaitGroup
	mu    sync.Mutex
}

const barWidth = 30

func (s *Shell) newProgress(label string, total int64) *progress {
	p := &progress{label: label, total: total, start: time.Now()}
	if !s.progress {
		return p
	}
	p.w, p.stop = s.errOut, make(chan struct{})
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.draw(false)
			case <-p.stop:
				return
			}
		}
	}()
	return p
}

// reader counts the bytes read through it.
func (p *progress) reader(r io.Reader) io.Reader { return &countingReader{r: r, n: &p.n} }

// reset starts over, for a request sent again to another node.
func (p *progress) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n.Store(0)
	p.start = time.Now()
}

// finish draws the final state and ends the line.
func (p *progress) finish(ok bool) {
	if p.w == nil {
		return
	}
	close(p.stop)
	p.done.Wait()
	p.draw(true)
	if !ok {
		fmt.Fprint(p.w, " (failed)")
	}
	fmt.Fprintln(p.w)
}

func (p *progress) draw(final bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.n.Load()
	elapsed := time.Since(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(n) / elapsed
	}
	var bar, of string
	if p.total > 0 {
		filled := int(float64(barWidth) * float64(min(n, p.total)) / float64(p.total))
		bar = "[" + strings.Repeat("=", filled) + strings.Repeat(" ", barWidth-filled) + "] "
		of = " / " + byteSize(p.total)
	}
	fmt.Fprintf(p.w, "\r%s %s%s%s  %s/s  %.1fs\x1b[K", p.label, bar, byteSize(n), of, byteSize(int64(rate)), elapsed)
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}
