package shell

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/raftlite/raftlite/sqlscan"
)

// dotCommand is one of the shell's own commands.
type dotCommand struct {
	usage string // arguments, for .help
	help  string
	run   func(s *Shell, args []string) error
}

var dotCommands map[string]dotCommand

func init() {
	// Set in init: the handlers refer to dotCommands (.help lists them).
	dotCommands = map[string]dotCommand{
		"help":        {"", "Show this list", (*Shell).help},
		"tables":      {"", "List the tables and views, leaving out SQLite's own and raftlite's (_raftlite_*)", (*Shell).tables},
		"schema":      {"[TABLE]", "Show the CREATE statements of what .tables lists, with indexes and triggers, or of TABLE", (*Shell).schema},
		"indexes":     {"[TABLE]", "List the indexes and their tables, or only TABLE's", (*Shell).indexes},
		"status":      {"[SECTION]", "Show the node's status, or one section of it (store, http, node, ...)", (*Shell).status},
		"nodes":       {"[all]", "List the voters and whether each is reachable (all: learners too)", (*Shell).nodes},
		"leader":      {"", "Show the leader", (*Shell).leader},
		"ready":       {"", "Say whether the node is ready to serve, or why not", (*Shell).ready},
		"consistency": {"[LEVEL]", "Show or set the level of reads: none, weak (the default), linearizable, strong, auto", (*Shell).consistency},
		"timer":       {"on|off", "Show how long each SQL request takes, on the node and round trip", toggle("timer", func(s *Shell) *bool { return &s.timer })},
		"headers":     {"on|off", "Show column names in column and csv modes", toggle("headers", func(s *Shell) *bool { return &s.headers })},
		"changes":     {"on|off", "Show the last inserted row ID after each INSERT, UPDATE, DELETE or REPLACE", toggle("changes", func(s *Shell) *bool { return &s.changes })},
		"mode":        {"[MODE]", "Show or set the output mode: column, csv, json, line", (*Shell).setMode},
		"backup":      {"FILE", "Write a SQLite copy of the database to FILE", (*Shell).backup},
		"dump":        {"FILE [TABLE,...]", "Write the database (or some tables) as SQL text to FILE", (*Shell).dump},
		"restore":     {"FILE", "Load FILE: a SQLite file replaces the database; SQL text runs on it, all or nothing", (*Shell).restore},
		"boot":        {"FILE", "Replace a single-node cluster's database with FILE, a SQLite file, at disk speed", (*Shell).boot},
		"remove":      {"ID", "Remove the node whose node-id is ID from the cluster", (*Shell).remove},
		"snapshot":    {"[N]", "Compact the Raft log now, keeping N entries (none or 0: the node's trailing_logs)", (*Shell).snapshot},
		"stepdown":    {"[ID]", "Make the leader hand leadership over, to node ID if given, and wait until it has", (*Shell).stepdown},
		"read":        {"FILE", "Run the statements and commands in FILE", (*Shell).read},
		"output":      {"[FILE]", "Send results to FILE (replacing what it held), or back to the screen", (*Shell).output},
		"show":        {"", "Show the current settings", (*Shell).show},
		"exit":        {"", "Leave the shell", (*Shell).exit},
		"quit":        {"", "Leave the shell", (*Shell).exit},
	}
}

// dotCommand runs ".name args..."; names are case-insensitive.
func (s *Shell) dotCommand(line string) {
	args, err := splitArgs(strings.TrimPrefix(line, "."))
	if err != nil {
		s.errorf("%v", err)
		return
	}
	if len(args) == 0 {
		s.errorf("empty command: enter .help for the list")
		return
	}
	name := strings.ToLower(args[0])
	cmd, ok := dotCommands[name]
	if !ok {
		s.errorf("unknown command .%s: enter .help for the list", args[0])
		return
	}
	if err := cmd.run(s, args[1:]); err != nil {
		s.errorf("%v", err)
	}
}

// splitArgs splits on spaces; single or double quotes keep spaces inside an argument (a file name).
func splitArgs(line string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inArg := false
	var quote rune
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inArg = r, true
		case r == ' ' || r == '\t':
			if inArg {
				out = append(out, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", line)
	}
	if inArg {
		out = append(out, cur.String())
	}
	return out, nil
}

func wantArgs(args []string, lo, hi int, usage string) error {
	if len(args) < lo || len(args) > hi {
		return fmt.Errorf("usage: %s", usage)
	}
	return nil
}

func (s *Shell) help(args []string) error {
	names := make([]string, 0, len(dotCommands))
	for name := range dotCommands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c := dotCommands[name]
		fmt.Fprintf(s.out, "%-24s %s\n", "."+strings.TrimSpace(name+" "+c.usage), c.help)
	}
	fmt.Fprintln(s.out, "\nSQL ends with ';' and may span lines; all statements of one input are sent in one request.")
	fmt.Fprintln(s.out, "Ctrl-C cancels the input being typed, or the request under way; Ctrl-D or .exit leaves.")
	return nil
}

// query runs one read at the session's level and prints it in the current mode.
func (s *Shell) query(sql string, args ...any) error {
	r := jsonRequest(http.MethodPost, "/db/query", []any{append([]any{sql}, args...)})
	r.query, r.read = url.Values{"level": {s.level}}, true
	resp, err := s.call(r)
	if err != nil {
		return err
	}
	for i := range resp.Results {
		s.printResult(&resp.Results[i], sqlscan.Select)
	}
	return nil
}

// userObjects leaves out SQLite's own tables and raftlite's bookkeeping.
const userObjects = `name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT LIKE '\_raftlite\_%' ESCAPE '\'`

func (s *Shell) tables(args []string) error {
	if err := wantArgs(args, 0, 0, ".tables"); err != nil {
		return err
	}
	return s.query(`SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND ` + userObjects + ` ORDER BY name`)
}

// schema prints the CREATE statements whole, as SQL a user can copy, whatever the output mode.
func (s *Shell) schema(args []string) error {
	if err := wantArgs(args, 0, 1, ".schema [TABLE]"); err != nil {
		return err
	}
	sql, params := `SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND `+userObjects+` ORDER BY rowid`, []any{}
	if len(args) == 1 {
		sql, params = `SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND tbl_name = ? ORDER BY rowid`, []any{args[0]}
	}
	r := jsonRequest(http.MethodPost, "/db/query", [][]any{append([]any{sql}, params...)})
	r.query, r.read = url.Values{"level": {s.level}}, true
	resp, err := s.call(r)
	if err != nil {
		return err
	}
	for _, r := range resp.Results {
		if r.Error != "" {
			return errors.New(r.Error)
		}
		for _, row := range r.Values {
			if len(row) == 1 {
				text, _ := plainText(row[0])
				fmt.Fprintf(s.out, "%s;\n", text)
			}
		}
	}
	return nil
}

func (s *Shell) indexes(args []string) error {
	if err := wantArgs(args, 0, 1, ".indexes [TABLE]"); err != nil {
		return err
	}
	if len(args) == 1 {
		return s.query(`SELECT name, tbl_name AS "table" FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND `+userObjects+` ORDER BY name`, args[0])
	}
	return s.query(`SELECT name, tbl_name AS "table" FROM sqlite_master WHERE type = 'index' AND ` + userObjects + ` ORDER BY name`)
}

// getJSON fetches a JSON document from a read-only endpoint.
func (s *Shell) getJSON(path string, q url.Values, v any) error {
	ctx, done := s.operation()
	defer done()
	resp, err := s.c.do(ctx, request{method: http.MethodGet, path: path, query: q})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return httpError(resp)
	}
	d := json.NewDecoder(resp.Body)
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

func (s *Shell) status(args []string) error {
	if err := wantArgs(args, 0, 1, ".status [SECTION]"); err != nil {
		return err
	}
	var st map[string]any
	if err := s.getJSON("/status", nil, &st); err != nil {
		return err
	}
	if len(args) == 1 {
		sub, ok := st[args[0]]
		if !ok {
			keys := make([]string, 0, len(st))
			for k := range st {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			return fmt.Errorf("no status section %q; sections: %s", args[0], strings.Join(keys, ", "))
		}
		st = map[string]any{args[0]: sub}
	}
	printTree(s.out, st, 0)
	return nil
}

// printTree prints nested maps as an indented "key: value" tree, keys sorted, nulls left out.
func printTree(w io.Writer, m map[string]any, depth int) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	indent := strings.Repeat("  ", depth)
	for _, k := range keys {
		switch v := m[k].(type) {
		case nil:
		case map[string]any:
			fmt.Fprintf(w, "%s%s:\n", indent, k)
			printTree(w, v, depth+1)
		default:
			text, _ := plainText(v)
			if list, ok := v.([]any); ok {
				parts := make([]string, len(list))
				for i, item := range list {
					parts[i], _ = plainText(item)
				}
				text = strings.Join(parts, ", ")
			}
			fmt.Fprintf(w, "%s%s: %s\n", indent, k, text)
		}
	}
}

// member is one node as /nodes?ver=2 describes it.
type member struct {
	ID        string `json:"id"`
	APIAddr   string `json:"api_addr"`
	Addr      string `json:"addr"`
	Voter     bool   `json:"voter"`
	Reachable bool   `json:"reachable"`
	Leader    bool   `json:"leader"`
	Error     string `json:"error"`
}

func (s *Shell) members(all bool) ([]member, error) {
	q := url.Values{"ver": {"2"}}
	if all {
		q.Set("nonvoters", "")
	}
	var out struct {
		Nodes []member `json:"nodes"`
	}
	if err := s.getJSON("/nodes", q, &out); err != nil {
		return nil, err
	}
	return out.Nodes, nil
}

func (s *Shell) printMembers(nodes []member) {
	r := &result{Columns: []string{"id", "api_addr", "raft_addr", "role", "reachable", "error"}}
	for _, n := range nodes {
		role := "follower"
		switch {
		case n.Leader:
			role = "leader"
		case !n.Voter:
			role = "learner"
		}
		r.Values = append(r.Values, []any{n.ID, n.APIAddr, n.Addr, role, n.Reachable, n.Error})
	}
	printRows(s.out, s.mode, s.headers, r)
}

func (s *Shell) nodes(args []string) error {
	if len(args) > 1 || (len(args) == 1 && args[0] != "all") {
		return errors.New("usage: .nodes [all]")
	}
	nodes, err := s.members(len(args) == 1)
	if err != nil {
		return err
	}
	s.printMembers(nodes)
	return nil
}

func (s *Shell) leader(args []string) error {
	if err := wantArgs(args, 0, 0, ".leader"); err != nil {
		return err
	}
	nodes, err := s.members(true)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(nodes, func(n member) bool { return n.Leader })
	if i < 0 {
		return errors.New("the cluster has no leader now")
	}
	s.printMembers(nodes[i : i+1])
	return nil
}

func (s *Shell) ready(args []string) error {
	if err := wantArgs(args, 0, 0, ".ready"); err != nil {
		return err
	}
	ctx, done := s.operation()
	defer done()
	resp, err := s.c.do(ctx, request{method: http.MethodGet, path: "/readyz"})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return httpError(resp)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode == http.StatusOK {
		fmt.Fprintln(s.out, "ready")
		return nil
	}
	return fmt.Errorf("not ready: %s", strings.TrimSpace(string(body)))
}

var levels = []string{"none", "weak", "linearizable", "strong", "auto"}

func (s *Shell) consistency(args []string) error {
	if err := wantArgs(args, 0, 1, ".consistency [none|weak|linearizable|strong|auto]"); err != nil {
		return err
	}
	if len(args) == 0 {
		fmt.Fprintln(s.out, s.level)
		return nil
	}
	level := strings.ToLower(args[0])
	if !slices.Contains(levels, level) {
		return fmt.Errorf("unknown level %q: choose one of %s", args[0], strings.Join(levels, ", "))
	}
	s.level = level
	return nil
}

func toggle(name string, field func(*Shell) *bool) func(*Shell, []string) error {
	return func(s *Shell, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("usage: .%s on|off", name)
		}
		switch strings.ToLower(args[0]) {
		case "on", "yes", "true", "1":
			*field(s) = true
		case "off", "no", "false", "0":
			*field(s) = false
		default:
			return fmt.Errorf("%q is neither on nor off", args[0])
		}
		return nil
	}
}

func (s *Shell) setMode(args []string) error {
	if err := wantArgs(args, 0, 1, ".mode [column|csv|json|line]"); err != nil {
		return err
	}
	if len(args) == 0 {
		fmt.Fprintln(s.out, s.mode)
		return nil
	}
	mode := strings.ToLower(args[0])
	if !slices.Contains(modes, mode) {
		return fmt.Errorf("unknown mode %q: choose one of %s", args[0], strings.Join(modes, ", "))
	}
	s.mode = mode
	return nil
}

func (s *Shell) remove(args []string) error {
	if err := wantArgs(args, 1, 1, ".remove ID"); err != nil {
		return err
	}
	return s.simple(jsonRequest(http.MethodDelete, "/remove", map[string]string{"id": args[0]}),
		fmt.Sprintf("node %s removed", args[0]))
}

func (s *Shell) snapshot(args []string) error {
	if err := wantArgs(args, 0, 1, ".snapshot [N]"); err != nil {
		return err
	}
	q := url.Values{}
	if len(args) == 1 {
		if n, err := strconv.ParseUint(args[0], 10, 63); err != nil {
			return fmt.Errorf("trailing entries %q: not a number", args[0])
		} else {
			q.Set("trailing_logs", strconv.FormatUint(n, 10))
		}
	}
	return s.simple(request{method: http.MethodPost, path: "/snapshot", query: q}, "snapshot taken")
}

func (s *Shell) stepdown(args []string) error {
	if err := wantArgs(args, 0, 1, ".stepdown [ID]"); err != nil {
		return err
	}
	r := request{method: http.MethodPost, path: "/leader"}
	if len(args) == 1 {
		r = jsonRequest(http.MethodPost, "/leader", map[string]string{"id": args[0]})
	}
	r.query = url.Values{"wait": {""}}
	return s.simple(r, "leadership handed over")
}

// simple sends a request whose answer carries nothing but its status, and prints success on success.
func (s *Shell) simple(r request, success string) error {
	ctx, done := s.operation()
	defer done()
	resp, err := s.c.do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return httpError(resp)
	}
	if resp.StatusCode == http.StatusNoContent && r.path == "/snapshot" {
		success = "nothing new to snapshot"
	}
	fmt.Fprintln(s.out, success)
	return nil
}

const maxReadDepth = 16

// read runs a file of statements and dot-commands, as if typed.
func (s *Shell) read(args []string) error {
	if err := wantArgs(args, 1, 1, ".read FILE"); err != nil {
		return err
	}
	if s.depth >= maxReadDepth {
		return fmt.Errorf(".read %s: nested more than %d deep (does a file read itself?)", args[0], maxReadDepth)
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	s.depth++
	defer func() { s.depth-- }()
	interactive := s.interactive
	s.interactive = false
	defer func() { s.interactive = interactive }()
	s.Run(&scriptReader{sc: newScanner(f)})
	return nil
}

func (s *Shell) output(args []string) error {
	if err := wantArgs(args, 0, 1, ".output [FILE]"); err != nil {
		return err
	}
	if len(args) == 0 {
		return s.setOutput("")
	}
	return s.setOutput(args[0])
}

func (s *Shell) show(args []string) error {
	if err := wantArgs(args, 0, 0, ".show"); err != nil {
		return err
	}
	onOff := map[bool]string{true: "on", false: "off"}
	output := "stdout"
	if s.outFile != nil {
		output = s.outFile.Name()
	}
	fmt.Fprintf(s.out, "       host: %s\n", s.c.Host())
	fmt.Fprintf(s.out, "   failover: %s\n", strings.Join(s.c.Hosts()[1:], ", "))
	fmt.Fprintf(s.out, "consistency: %s\n", s.level)
	fmt.Fprintf(s.out, "       mode: %s\n", s.mode)
	fmt.Fprintf(s.out, "    headers: %s\n", onOff[s.headers])
	fmt.Fprintf(s.out, "      timer: %s\n", onOff[s.timer])
	fmt.Fprintf(s.out, "    changes: %s\n", onOff[s.changes])
	fmt.Fprintf(s.out, "     output: %s\n", output)
	return nil
}

func (s *Shell) exit(args []string) error {
	s.quit = true
	return nil
}

// scriptReader reads lines from a file or a pipe, without prompts.
type scriptReader struct{ sc *bufio.Scanner }

func newScanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20) // a dump may hold long INSERTs
	return sc
}

// NewScriptReader reads statements from r (standard input that is not a terminal, or a file).
func NewScriptReader(r io.Reader) LineReader { return &scriptReader{sc: newScanner(r)} }

func (r *scriptReader) ReadLine(string) (string, error) {
	if r.sc.Scan() {
		return r.sc.Text(), nil
	}
	if err := r.sc.Err(); err != nil {
		return "", err
	}
	return "", io.EOF
}
