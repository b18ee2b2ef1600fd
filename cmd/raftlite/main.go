// Command raftlite is the interactive shell for a raftlite cluster (and any rqlite-compatible server).
//
//	raftlite                         connect to 127.0.0.1:4001 and read statements from the terminal
//	raftlite -H db1 -p 4001 -a db2:4001,db3:4001
//	raftlite 'SELECT * FROM foo'     run one statement (or dot-command) and exit
//	raftlite < script.sql            run a script; the exit status says whether everything succeeded
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/raftlite/raftlite/shell"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "v0.1.0"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

type options struct {
	host, scheme, alternatives          string
	port                                int
	user, caCert, clientCert, clientKey string
	insecure, showVersion               bool
	timeout                             time.Duration
}

func parseFlags(args []string, stderr io.Writer) (*options, []string, error) {
	o := &options{}
	fs := flag.NewFlagSet("raftlite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var pairs [][2]string
	both := func(short, long string, f func(name string)) {
		f(short)
		f(long)
		pairs = append(pairs, [2]string{short, long})
	}
	both("H", "host", func(n string) { fs.StringVar(&o.host, n, "127.0.0.1", "node `host`") })
	both("p", "port", func(n string) { fs.IntVar(&o.port, n, 4001, "node HTTP `port`") })
	both("s", "scheme", func(n string) { fs.StringVar(&o.scheme, n, "http", "`http or https`") })
	both("a", "alternatives", func(n string) {
		fs.StringVar(&o.alternatives, n, "", "other nodes to fail over to, `host:port,...` (members are also learned from the cluster)")
	})
	both("u", "user", func(n string) { fs.StringVar(&o.user, n, "", "credentials, `user:password`") })
	both("c", "ca-cert", func(n string) { fs.StringVar(&o.caCert, n, "", "CA certificate `file` for HTTPS") })
	both("d", "client-cert", func(n string) { fs.StringVar(&o.clientCert, n, "", "client certificate `file` for mutual TLS") })
	both("k", "client-key", func(n string) { fs.StringVar(&o.clientKey, n, "", "client key `file` for mutual TLS") })
	both("i", "insecure", func(n string) { fs.BoolVar(&o.insecure, n, false, "do not verify the server's certificate") })
	both("t", "http-timeout", func(n string) { fs.DurationVar(&o.timeout, n, 30*time.Second, "timeout of each request") })
	both("v", "version", func(n string) { fs.BoolVar(&o.showVersion, n, false, "print the version and exit") })
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: raftlite [flags] [SQL or .command]\n\n"+
			"Without an argument, statements are read from the terminal (or from standard input in a script).\n"+
			"RAFTLITE_HOST=[scheme://]host[:port] sets the node when -H, -p and -s are not given.\n\nFlags:\n")
		for _, p := range pairs {
			f := fs.Lookup(p[1])
			name, usage := flag.UnquoteUsage(f)
			if f.DefValue != "" && f.DefValue != "false" {
				usage += fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(stderr, "  %s\n    \t%s\n", strings.TrimSpace(fmt.Sprintf("-%s, --%s %s", p[0], p[1], name)), usage)
		}
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil, nil, err
		}
		return nil, nil, flagError{err}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	addressed := set["H"] || set["host"] || set["p"] || set["port"] || set["s"] || set["scheme"]
	if env := os.Getenv("RAFTLITE_HOST"); env != "" && !addressed {
		if err := o.fromEnv(env); err != nil {
			return nil, nil, err
		}
	}
	if o.scheme != "http" && o.scheme != "https" {
		return nil, nil, fmt.Errorf("scheme %q: use http or https", o.scheme)
	}
	if o.port <= 0 || o.port > 65535 {
		return nil, nil, fmt.Errorf("port %d is out of range", o.port)
	}
	return o, fs.Args(), nil
}

// flagError is an error the flag package has already reported.
type flagError struct{ error }

// fromEnv reads [scheme://]host[:port].
func (o *options) fromEnv(v string) error {
	if scheme, rest, ok := strings.Cut(v, "://"); ok {
		o.scheme, v = scheme, rest
	}
	if i := strings.LastIndex(v, ":"); i >= 0 && !strings.HasSuffix(v, "]") {
		port, err := strconv.Atoi(v[i+1:])
		if err != nil {
			return fmt.Errorf("RAFTLITE_HOST=%q: bad port", v)
		}
		o.port, v = port, v[:i]
	}
	if v != "" {
		o.host = v
	}
	return nil
}

func (o *options) hosts() []string {
	hosts := []string{fmt.Sprintf("%s://%s", o.scheme, joinHostPort(o.host, o.port))}
	for _, alt := range strings.Split(o.alternatives, ",") {
		if alt = strings.TrimSpace(alt); alt == "" {
			continue
		}
		if !strings.Contains(alt, "://") {
			alt = o.scheme + "://" + alt
		}
		hosts = append(hosts, alt)
	}
	return hosts
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(port)
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, rest, err := parseFlags(args, stderr)
	if err == flag.ErrHelp {
		return 0
	}
	var parseErr flagError
	if errors.As(err, &parseErr) {
		return 2 // the flag package has printed it, with the usage
	}
	if err != nil {
		fmt.Fprintln(stderr, "raftlite:", err)
		return 2
	}
	if o.showVersion {
		fmt.Fprintf(stdout, "raftlite %s\n", version)
		return 0
	}
	client, err := shell.NewClient(shell.ClientConfig{Hosts: o.hosts(), User: o.user, Timeout: o.timeout,
		CACert: o.caCert, Cert: o.clientCert, Key: o.clientKey, Insecure: o.insecure})
	if err != nil {
		fmt.Fprintln(stderr, "raftlite:", err)
		return 2
	}
	stdinFile, _ := stdin.(*os.File)
	interactive := len(rest) == 0 && stdinFile != nil && term.IsTerminal(int(stdinFile.Fd()))
	stderrFile, _ := stderr.(*os.File)
	sh := shell.New(shell.Config{Client: client, Out: stdout, Err: stderr, Interactive: interactive,
		Progress: stderrFile != nil && term.IsTerminal(int(stderrFile.Fd()))})
	defer sh.Close()

	switch {
	case len(rest) > 0:
		sh.Connect(context.Background())
		if !sh.Failed() {
			sh.Execute(strings.Join(rest, " "))
		}
	case interactive:
		fmt.Fprintln(stderr, "Welcome to the raftlite shell. Enter \".help\" for usage hints.")
		sh.Connect(context.Background())
		// At the prompt the line editor reads Ctrl-C itself; while a request runs it arrives as SIGINT and
		// cancels that request instead of killing the shell.
		sigc := make(chan os.Signal, 1)
		signal.Notify(sigc, os.Interrupt)
		defer signal.Stop(sigc)
		go func() {
			for range sigc {
				sh.Interrupt()
			}
		}()
		in := shell.NewTerminalReader(historyPath())
		sh.Run(in)
		if err := in.Close(); err != nil {
			fmt.Fprintln(stderr, "raftlite:", err)
		}
		fmt.Fprintln(stderr, "bye")
		return 0
	default:
		sh.Connect(context.Background())
		sh.Run(shell.NewScriptReader(stdin))
	}
	if sh.Failed() {
		return 1
	}
	return 0
}

// historyPath is $RAFTLITE_HISTFILE, or ~/.raftlite_history.
func historyPath() string {
	if p := os.Getenv("RAFTLITE_HISTFILE"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".raftlite_history")
}
