package system_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// No container engine runs on the machines the tests run on, so the image is not built here. These
// tests run what the image, docker-compose.yml and the systemd unit run: the same script, flags and
// environment, with loopback addresses in place of the containers' and hosts' names.

func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The image builds raftlited with the Makefile's SQLite features, and runs the entry point script this
// repository has, with /readyz as its health check.
func TestDockerfile(t *testing.T) {
	docker, makefile := readRepoFile(t, "Dockerfile"), readRepoFile(t, "Makefile")
	tags := regexp.MustCompile(`(?m)^TAGS := (.*)$`).FindStringSubmatch(makefile)
	if tags == nil || !strings.Contains(docker, `-tags "`+tags[1]+`"`) {
		t.Errorf("the Dockerfile does not build with the Makefile's tags (%v)", tags)
	}
	for _, want := range []string{"COPY deploy/docker-entrypoint.sh", `ENTRYPOINT ["docker-entrypoint.sh"]`, "/readyz", "USER raftlite", "VOLUME /raftlite/file"} {
		if !strings.Contains(docker, want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
	if fi, err := os.Stat(filepath.Join("..", "deploy", "docker-entrypoint.sh")); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("deploy/docker-entrypoint.sh is missing or not executable (%v)", err)
	}
}

// composeCommand is the command: of docker-compose.yml's nodes.
func composeCommand(t *testing.T) []string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s+command: \[(.*)\]$`).FindStringSubmatch(readRepoFile(t, "docker-compose.yml"))
	if m == nil {
		t.Fatal("no command: in docker-compose.yml")
	}
	var out []string
	if err := json.Unmarshal([]byte("["+m[1]+"]"), &out); err != nil {
		t.Fatalf("docker-compose.yml's command is not a list of strings: %v", err)
	}
	return out
}

// docker-compose.yml's three nodes, each run by the image's entry point script with its environment:
// they form one cluster.
func TestComposeClusterThroughEntrypoint(t *testing.T) {
	args := composeCommand(t)
	var nodes []*node
	names := map[string]string{}
	for i := 1; i <= 3; i++ {
		n := newNode(t, fmt.Sprintf("node%d", i))
		names[fmt.Sprintf("node%d:4002", i)] = n.raftAddr
		nodes = append(nodes, n)
	}
	script, _ := filepath.Abs(filepath.Join("..", "deploy", "docker-entrypoint.sh"))
	for _, n := range nodes {
		var flags []string
		for _, a := range args {
			for name, addr := range names {
				a = strings.ReplaceAll(a, name, addr)
			}
			flags = append(flags, a)
		}
		n.prefix = []string{"env", "RAFTLITED=" + raftlitedBin, "NODE_ID=" + n.id, "HTTP_ADDR=" + n.httpAddr, "HTTP_ADV_ADDR=" + n.httpAddr,
			"RAFT_ADDR=" + n.raftAddr, "RAFT_ADV_ADDR=" + n.raftAddr, "DATA_DIR=" + n.dir, "sh", script}
		// The script gets the compose command only; the environment carries the rest.
		n.flags, n.script = flags, true
	}
	startAll(nodes...)
	waitVoters(t, nodes, 3)
	sameClusterID(t, nodes...)
	for _, n := range nodes {
		if got := n.storeField("node_id"); got != n.id {
			t.Errorf("node_id %v, want %s (from NODE_ID)", got, n.id)
		}
	}
}

// The systemd unit and its environment file, on three "hosts" (127.0.0.1-3): the documented 3-host
// cluster forms.
func TestSystemdUnitFlags(t *testing.T) {
	unit := readRepoFile(t, "deploy/systemd/raftlited.service")
	exec := regexp.MustCompile(`(?m)^ExecStart=(\S+) \$RAFTLITED_OPTS (\S+)$`).FindStringSubmatch(unit)
	if exec == nil || exec[1] != "/usr/local/bin/raftlited" || exec[2] != "/var/lib/raftlite" {
		t.Fatalf("ExecStart is not raftlited $RAFTLITED_OPTS <state directory>: %v", exec)
	}
	if !strings.Contains(unit, "StateDirectory=raftlite") || !strings.Contains(unit, "EnvironmentFile=/etc/default/raftlited") {
		t.Error("the unit's data directory or environment file changed; update this test and docs/deployment.md")
	}
	var opts string
	sc := bufio.NewScanner(strings.NewReader(readRepoFile(t, "deploy/systemd/raftlited.env")))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "RAFTLITED_OPTS="); ok {
			opts = strings.Trim(v, `"`)
		}
	}
	if opts == "" {
		t.Fatal("no RAFTLITED_OPTS in deploy/systemd/raftlited.env")
	}
	httpPort, raftPort := loopbackPorts(t, 3)
	var nodes []*node
	for i := 1; i <= 3; i++ {
		host := fmt.Sprintf("host%d", i)
		ip := fmt.Sprintf("127.0.0.%d", i)
		n := newNode(t, host)
		n.httpAddr, n.raftAddr = fmt.Sprintf("%s:%d", ip, httpPort), fmt.Sprintf("%s:%d", ip, raftPort)
		hostOpts := strings.ReplaceAll(opts, "-node-id host1", "-node-id "+host)
		hostOpts = strings.ReplaceAll(hostOpts, "host1.example.net:4001", host+".example.net:4001")
		hostOpts = strings.ReplaceAll(hostOpts, "-raft-adv-addr host1.example.net:4002", "-raft-adv-addr "+host+".example.net:4002")
		r := strings.NewReplacer("0.0.0.0:4001", n.httpAddr, "0.0.0.0:4002", n.raftAddr,
			"host1.example.net:4001", "127.0.0.1:"+strconv.Itoa(httpPort), "host2.example.net:4001", "127.0.0.2:"+strconv.Itoa(httpPort), "host3.example.net:4001", "127.0.0.3:"+strconv.Itoa(httpPort),
			"host1.example.net:4002", "127.0.0.1:"+strconv.Itoa(raftPort), "host2.example.net:4002", "127.0.0.2:"+strconv.Itoa(raftPort), "host3.example.net:4002", "127.0.0.3:"+strconv.Itoa(raftPort))
		n.flags = strings.Fields(r.Replace(hostOpts))
		nodes = append(nodes, n)
	}
	startAll(nodes...)
	waitVoters(t, nodes, 3)
	sameClusterID(t, nodes...)
}
