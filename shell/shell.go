package shell

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/raftlite/raftlite/sqlscan"
)

// LineReader supplies input one line at a time. ReadLine returns io.EOF at the end of input and
// ErrInterrupted when the user cancels the line being typed (Ctrl-C).
type LineReader interface {
	ReadLine(prompt string) (string, error)
}

// ErrInterrupted is returned by a LineReader when the user presses Ctrl-C.
var ErrInterrupted = errors.New("interrupted")

// historian is implemented by line readers that keep a history: the shell records whole inputs (a
// multi-line statement as one entry) rather than single lines.
type historian interface {
	AddHistory(entry string)
}

// Config sets up a Shell.
type Config struct {
	Client *Client
	Out    io.Writer // results
	Err    io.Writer // errors, banners and progress bars
	// Interactive shows prompts and the welcome banner.
	Interactive bool
	// Progress shows a live progress bar for long transfers (Err is a terminal).
	Progress bool
}

// Shell runs statements and dot-commands against a cluster and prints what comes back.
type Shell struct {
	c           *Client
	stdout      io.Writer
	out         io.Writer // stdout, or the file named by .output
	outFile     *os.File
	errOut      io.Writer
	interactive bool
	progress    bool

	mode    string
	headers bool
	timer   bool
	changes bool
	level   string

	failed bool // some command failed: a script exits non-zero
	quit   bool
	depth  int // .read nesting

	mu       sync.Mutex
	cancelOp context.CancelFunc // cancels the request under way (Interrupt)
}

// operation returns the context of one command's requests; Interrupt cancels it. done releases it.
func (s *Shell) operation() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	s.cancelOp = cancel
	s.mu.Unlock()
	return ctx, func() {
		s.mu.Lock()
		s.cancelOp = nil
		s.mu.Unlock()
		cancel()
	}
}

// Interrupt cancels the request under way, if there is one (Ctrl-C while waiting for the node).
func (s *Shell) Interrupt() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancelOp == nil {
		return false
	}
	s.cancelOp()
	return true
}

// New returns a shell with the defaults: column mode with headers, weak reads, timer and changes off.
func New(cfg Config) *Shell {
	return &Shell{c: cfg.Client, stdout: cfg.Out, out: cfg.Out, errOut: cfg.Err, interactive: cfg.Interactive,
		progress: cfg.Progress, mode: modeColumn, headers: true, level: "weak"}
}

// Failed reports whether any statement or command failed.
func (s *Shell) Failed() bool { return s.failed }

// Close ends redirected output.
func (s *Shell) Close() error {
	return s.setOutput("")
}

// Connect greets the node, prints its version and learns the other members for failover. A node that
// cannot be reached is reported; the shell stays usable and tries again with the next command.
func (s *Shell) Connect(ctx context.Context) {
	resp, err := s.c.do(ctx, request{method: http.MethodGet, path: "/status"})
	if err != nil {
		// Not a failure of the session: the next command tries again (and fails over), and .help needs
		// no node at all.
		if s.interactive {
			fmt.Fprintf(s.errOut, "Warning: %v\n", err)
		}
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// A user without the status permission can still query.
		if s.interactive {
			fmt.Fprintf(s.errOut, "Connected to %s (its version is not shown to this user)\n", s.c.Host())
		}
		return
	}
	version := resp.Header.Get("X-Rqlite-Version")
	if version == "" {
		version = "unknown"
	}
	if s.interactive {
		fmt.Fprintf(s.errOut, "Connected to %s running version %s\n", s.c.Host(), version)
	}
	// Best effort: without the member list, failover uses the hosts given on the command line.
	_ = s.c.Discover(ctx)
}

func (s *Shell) prompt() string {
	host := s.c.Host()
	if _, rest, ok := strings.Cut(host, "://"); ok {
		host = rest
	}
	return host + "> "
}

// Run reads and runs input until the end of input or .exit.
func (s *Shell) Run(in LineReader) {
	var buf strings.Builder
	for !s.quit {
		prompt := ""
		if s.interactive {
			prompt = s.prompt()
			if buf.Len() > 0 {
				prompt = strings.Repeat(" ", max(len(prompt)-5, 0)) + "...> "
			}
		}
		line, err := in.ReadLine(prompt)
		if errors.Is(err, ErrInterrupted) {
			buf.Reset()
			continue
		}
		if err != nil {
			pending := len(sqlscan.Split(buf.String())) > 0
			switch {
			case err != io.EOF:
				s.errorf("read input: %v", err)
				if pending {
					s.errorf("the unfinished statement was not run")
				}
			case pending && s.interactive:
				// Ctrl-D with a statement half typed: leave without running it, as Ctrl-C would drop it.
				fmt.Fprintln(s.errOut, "(unfinished statement not run: it lacks its ';')")
			case pending:
				// A script's last statement may lack its ';'.
				s.runSQL(buf.String())
			}
			return
		}
		if len(sqlscan.Split(buf.String())) == 0 {
			// Nothing but comments so far: a dot-command may still come.
			trimmed := strings.TrimSpace(line)
			if trimmed == "" {
				continue
			}
			if strings.HasPrefix(trimmed, ".") || isQuit(trimmed) {
				buf.Reset()
				s.remember(in, trimmed)
				s.Execute(trimmed)
				continue
			}
		}
		buf.WriteString(line)
		buf.WriteByte('\n')
		if sqlscan.Complete(buf.String()) {
			s.remember(in, buf.String())
			s.runSQL(buf.String())
			s.checkOutput()
			buf.Reset()
		}
	}
}

// remember records an input in the history as one line: its lines joined by spaces (string literals keep
// their spacing), lines that are only a comment left out.
func (s *Shell) remember(in LineReader, entry string) {
	h, ok := in.(historian)
	if !ok {
		return
	}
	var kept []string
	for _, line := range strings.Split(entry, "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "--") {
			kept = append(kept, t)
		}
	}
	h.AddHistory(strings.Join(kept, " "))
}

func isQuit(s string) bool {
	s = strings.ToLower(strings.TrimSuffix(s, ";"))
	return s == "quit" || s == "exit"
}

// Execute runs one input: a dot-command, or SQL (one or more statements, the last ';' optional).
func (s *Shell) Execute(input string) {
	defer s.checkOutput()
	trimmed := strings.TrimSpace(input)
	switch {
	case isQuit(trimmed):
		s.quit = true
	case strings.HasPrefix(trimmed, "."):
		s.dotCommand(trimmed)
	default:
		s.runSQL(input)
	}
}

// runSQL sends the statements of src in one request and prints each result.
func (s *Shell) runSQL(src string) {
	var stmts []string
	var kinds []sqlscan.Kind
	for _, st := range sqlscan.Split(src) {
		stmts = append(stmts, st.Text)
		kinds = append(kinds, sqlscan.Analyze(st.Text).Kind)
	}
	if len(stmts) == 0 {
		return
	}
	q := url.Values{"level": {s.level}}
	if s.timer {
		q.Set("timings", "")
	}
	start := time.Now()
	r := jsonRequest(http.MethodPost, endpointFor(kinds), stmts)
	r.query, r.read = q, r.path == "/db/query"
	resp, err := s.call(r)
	if err != nil {
		s.errorf("%v", err)
		return
	}
	elapsed := time.Since(start)
	for i := range resp.Results {
		kind := sqlscan.Other
		if i < len(kinds) {
			kind = kinds[i]
		}
		s.printResult(&resp.Results[i], kind)
	}
	if s.timer {
		fmt.Fprintf(s.out, "Run Time: %.6f seconds (round trip %.6f seconds)\n", resp.Time, elapsed.Seconds())
	}
}

// endpointFor picks /db/query for reads, /db/execute for writes and /db/request for a mix (or a PRAGMA,
// which may be either): a user allowed only to query, or only to execute, can still use the shell.
func endpointFor(kinds []sqlscan.Kind) string {
	reads := 0
	for _, k := range kinds {
		switch k {
		case sqlscan.Select, sqlscan.Values, sqlscan.Explain:
			reads++
		case sqlscan.PragmaStmt:
			return "/db/request"
		}
	}
	switch reads {
	case len(kinds):
		return "/db/query"
	case 0:
		return "/db/execute"
	}
	return "/db/request"
}

// call sends a request whose answer is a rqlite results body.
func (s *Shell) call(r request) (response, error) {
	ctx, done := s.operation()
	defer done()
	hr, err := s.c.do(ctx, r)
	if err != nil {
		return response{}, err
	}
	defer hr.Body.Close()
	if hr.StatusCode != http.StatusOK {
		return response{}, httpError(hr)
	}
	b, err := io.ReadAll(hr.Body)
	if err != nil {
		return response{}, fmt.Errorf("read answer from %s: %w", s.c.Host(), err)
	}
	resp, err := decodeResponse(b)
	if err != nil {
		return resp, err
	}
	if resp.Error != "" {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}

// printResult prints rows, an error, or what a write did. Only INSERT, UPDATE, DELETE and REPLACE report a
// count: SQLite's count after any other statement is left over from an earlier one.
func (s *Shell) printResult(r *result, kind sqlscan.Kind) {
	switch {
	case r.Error != "":
		s.errorf("%s", r.Error)
	case r.isQuery():
		if err := printRows(s.out, s.mode, s.headers, r); err != nil {
			s.errorf("print rows: %v", err)
		}
	case kind != sqlscan.Insert && kind != sqlscan.Update && kind != sqlscan.Delete && kind != sqlscan.Replace:
		fmt.Fprintln(s.out, "ok")
	default:
		n := int64(0)
		if r.RowsAffected != nil {
			n = *r.RowsAffected
		}
		rows := "rows"
		if n == 1 {
			rows = "row"
		}
		line := fmt.Sprintf("%d %s affected", n, rows)
		if s.changes && r.LastInsertID != nil {
			line += fmt.Sprintf(", last insert ID: %d", *r.LastInsertID)
		}
		fmt.Fprintln(s.out, line)
	}
}

// checkOutput reports, once, a failed write of results (a full disk behind .output).
func (s *Shell) checkOutput() {
	if ew, ok := s.out.(*errWriter); ok && ew.err != nil && !ew.reported {
		ew.reported = true
		s.errorf("write results to %s: %v", ew.name, ew.err)
	}
}

// errWriter remembers the first failed write.
type errWriter struct {
	w        io.Writer
	name     string
	err      error
	reported bool
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// errorf reports a failure on the error output and marks the session as failed.
func (s *Shell) errorf(format string, args ...any) {
	s.failed = true
	fmt.Fprintf(s.errOut, "Error: "+format+"\n", args...)
}

// setOutput sends results to path, or back to standard output if path is empty.
func (s *Shell) setOutput(path string) error {
	if s.outFile != nil {
		s.checkOutput()
		err := s.outFile.Close()
		s.outFile, s.out = nil, s.stdout
		if err != nil {
			return fmt.Errorf("close output file: %w", err)
		}
	}
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("open output file: %w", err)
	}
	s.outFile, s.out = f, &errWriter{w: f, name: path}
	return nil
}
