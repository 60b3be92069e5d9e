package embedded

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Options configures Start.
type Options struct {
	// Listen is the host:port to serve on. Default "127.0.0.1:0", a free
	// loopback port.
	Listen string
	// Partitions is the partition count of automatically created topics.
	// Default 4.
	Partitions int
	// DataDir, when set, persists topics there across restarts. Default:
	// in memory only.
	DataDir string
	// Topics are created at start with Partitions partitions each.
	Topics []string
}

// Broker is a running embedded broker.
type Broker struct {
	c    *kfake.Cluster
	addr string
}

// Start starts a single-node broker.
func Start(o Options) (*Broker, error) {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.Partitions == 0 {
		o.Partitions = 4
	}
	if o.Partitions < 0 {
		return nil, fmt.Errorf("embedded broker: partitions %d < 1", o.Partitions)
	}
	host, portStr, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: listen address %q: %w (want host:port, e.g. 127.0.0.1:9092)", o.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("embedded broker: listen port %q is not a port number", portStr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	// kfake listens on 127.0.0.1 with a port; a custom listen function keeps
	// the chosen host, and port 0 picks a free one.
	listen := func(network, _ string) (net.Listener, error) {
		return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(listen),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(o.Partitions),
	}
	if o.DataDir != "" {
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	if len(o.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(o.Partitions), o.Topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded broker on %s: %w", o.Listen, err)
	}
	if o.DataDir != "" {
		persistAutoCreated(c, int32(o.Partitions))
	}
	addrs := c.ListenAddrs()
	if len(addrs) == 0 {
		c.Close()
		return nil, fmt.Errorf("embedded broker on %s: no listener", o.Listen)
	}
	return &Broker{c: c, addr: addrs[0]}, nil
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker and closes its connections.
func (b *Broker) Close() { b.c.Close() }

// persistAutoCreated makes topics that clients create by asking for their
// metadata durable as soon as they exist. kfake writes its topic list when
// a topic is created explicitly and on a clean stop, but not when a
// metadata request creates one: after kill -9 such a topic, and every
// acknowledged record in it, would be gone. So a metadata request that may
// create topics first creates the missing ones explicitly; records
// themselves reach the partition files as they are acknowledged.
func persistAutoCreated(c *kfake.Cluster, partitions int32) {
	var mu sync.Mutex
	known := map[string]bool{}
	c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		m, ok := req.(*kmsg.MetadataRequest)
		if !ok || !m.AllowAutoTopicCreation {
			return nil, nil, false
		}
		var missing []string
		mu.Lock()
		for _, t := range m.Topics {
			if t.Topic != nil && *t.Topic != "" && !known[*t.Topic] {
				missing = append(missing, *t.Topic)
			}
		}
		mu.Unlock()
		if len(missing) == 0 {
			return nil, nil, false
		}
		// CreateTopic runs on the cluster's loop, which this control
		// function holds: sleeping lets the loop run it.
		c.SleepControl(func() {
			for _, t := range missing {
				err := c.CreateTopic(t, partitions, nil)
				if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
					mu.Lock()
					known[t] = true
					mu.Unlock()
				}
			}
		})
		return nil, nil, false
	})
	// A deleted topic may come back by auto-creation: forget them all
	// (deletes may name topics by id).
	c.ControlKey(int16(kmsg.DeleteTopics), func(kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		clear(known)
		mu.Unlock()
		return nil, nil, false
	})
}
