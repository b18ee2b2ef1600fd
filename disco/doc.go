// Package disco finds the other nodes of a cluster for a node that starts without data (rqlite's
// -disco-mode): through DNS (the A/AAAA records of a name, or its SRV records), from which the node forms
// a cluster of -bootstrap-expect nodes or joins the one they run; or through a key in etcd or Consul that
// names the leader, which the first node to claim it bootstraps and the leader keeps current. It speaks to
// etcd through its JSON gateway and to Consul through its HTTP API, with the standard library; the cluster
// itself is reached through the functions and interfaces package cluster defines.
package disco
