package disco

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// The modes of -disco-mode.
const (
	ModeDNS    = "dns"
	ModeDNSSRV = "dns-srv"
	ModeEtcd   = "etcd-kv"
	ModeConsul = "consul-kv"
)

// ErrUnknownMode is rqlite's message for a -disco-mode it does not know.
var ErrUnknownMode = errors.New("disco mode must be one of consul-kv, etcd-kv, dns, or dns-srv")

// ReadConfig returns -disco-config's JSON: the file it names, or, if no such file can be opened, the
// string itself (as rqlite reads it). Environment variables in it are expanded. "" gives nil.
func ReadConfig(arg string) []byte {
	if arg == "" {
		return nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		b = []byte(arg)
	}
	return []byte(os.ExpandEnv(string(b)))
}

// decode reads raw (if any) into dst, refusing unknown fields, and names the mode in its errors.
func decode(mode string, raw []byte, dst any) error {
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("-disco-config for %s: %s", mode, strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// duration reads a JSON duration given as Go's text ("5s") or as nanoseconds.
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		v, err := time.ParseDuration(s)
		*d = duration(v)
		return err
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("a duration must be text such as \"5s\" or a number of nanoseconds, not %s", b)
	}
	*d = duration(n)
	return nil
}
