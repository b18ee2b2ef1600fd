package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// measurement is one run of one scenario.
type measurement struct {
	ops     int           // requests completed
	stmts   int           // statements completed
	elapsed time.Duration // wall time
	lat     []time.Duration
}

func (m measurement) perSecond() float64      { return float64(m.ops) / m.elapsed.Seconds() }
func (m measurement) stmtsPerSecond() float64 { return float64(m.stmts) / m.elapsed.Seconds() }

// runClients runs clients doing op until d has passed, and records every latency.
func runClients(clients int, d time.Duration, op func(client int) (stmts int, err error)) (measurement, error) {
	var (
		mu    sync.Mutex
		all   []time.Duration
		total atomic.Int64
		sErr  error
		wg    sync.WaitGroup
	)
	start := time.Now()
	stop := start.Add(d)
	for c := 0; c < clients; c++ {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(stop) {
				t := time.Now()
				n, err := op(c)
				if err != nil {
					mu.Lock()
					sErr = errors.Join(sErr, err)
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t))
				total.Add(int64(n))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if sErr != nil {
		return measurement{}, sErr
	}
	return measurement{ops: len(all), stmts: int(total.Load()), elapsed: time.Since(start), lat: all}, nil
}

var ids atomic.Int64

func insertOne(n *node) (int, error) {
	return 1, n.exec([]any{"INSERT INTO bench(id, v) VALUES(?, ?)", ids.Add(1), "benchmark row"})
}

// insertBatch sends 100 inserts in one request.
func insertBatch(n *node) (int, error) {
	stmts := make([]any, 100)
	for i := range stmts {
		stmts[i] = []any{"INSERT INTO bench(id, v) VALUES(?, ?)", ids.Add(1), "benchmark row"}
	}
	return 100, n.exec(stmts...)
}

// seedRows inserts n rows, 100 per request.
func seedRows(l *node, n int) error {
	for i := 0; i < n; i += 100 {
		if _, err := insertBatch(l); err != nil {
			return fmt.Errorf("seed rows for the reads: %w", err)
		}
	}
	return nil
}

// queueOne sends one insert through the write queue.
func queueOne(n *node) (int, error) {
	body, _ := json.Marshal([]any{[]any{"INSERT INTO bench(id, v) VALUES(?, ?)", ids.Add(1), "queued row"}})
	_, err := n.post("/db/execute?queue", body)
	return 1, err
}

// readOne reads one row, chosen at random from the ids first..last, by primary key at level.
func readOne(n *node, level string, first, last int64) (int, error) {
	id := first + rand.Int64N(last-first+1)
	q := url.QueryEscape(fmt.Sprintf("SELECT id, v FROM bench WHERE id = %d", id))
	b, err := n.get("/db/query?level=" + level + "&q=" + q)
	if err != nil {
		return 0, err
	}
	var r struct {
		Results []struct {
			Values [][]any `json:"values"`
			Error  string  `json:"error"`
		} `json:"results"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Error != "" || len(r.Results) != 1 || r.Results[0].Error != "" || len(r.Results[0].Values) != 1 {
		return 0, fmt.Errorf("read at %s: %s", level, b)
	}
	return 1, nil
}

// drainQueue returns once everything queued on n has been written.
func drainQueue(n *node) error {
	_, err := n.post("/db/execute?queue&wait&timeout=60s", []byte("[]"))
	return err
}
