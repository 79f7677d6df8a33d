package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/mynet/mynet/driver"
)

// PortsPath is mynet's private route for the published ports; the engine
// never calls it. It answers only once start-up restore is done (see
// WaitReady), so it shows what the kernel holds.
const PortsPath = "/Mynet.Ports"

// portsQuerier is the driver side of PortsPath; *driver.Driver fits.
type portsQuerier interface {
	Ports(q *driver.PortsQuery) (*driver.PortsAnswer, error)
}

// QueryPorts asks the mynet serving on the unix socket at sock for the
// published ports q selects. The running plugin holds the state file's
// lock, so asking it is the only way to read its state.
func QueryPorts(ctx context.Context, sock string, q *driver.PortsQuery) (*driver.PortsAnswer, error) {
	body, err := json.Marshal(q)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://mynet"+PortsPath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking mynet on %s (is it running? --socket names its socket): %w", sock, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading mynet's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Err string }
		if json.Unmarshal(raw, &e) == nil && e.Err != "" {
			return nil, fmt.Errorf("mynet: %s", e.Err)
		}
		return nil, fmt.Errorf("mynet answered HTTP %d on %s: %s", resp.StatusCode, PortsPath, raw)
	}
	ans := &driver.PortsAnswer{}
	if err := json.Unmarshal(raw, ans); err != nil {
		return nil, fmt.Errorf("decoding mynet's answer: %w", err)
	}
	return ans, nil
}
