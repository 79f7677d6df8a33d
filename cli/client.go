package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/mynet/mynet/api"
)

// ErrNotMynet: the socket answered, but not the route: whatever serves it
// is not mynet (or a mynet too old for the command).
var ErrNotMynet = errors.New("not a mynet socket")

// maxAnswer bounds an answer of the private API; `mynet ls` on a large
// host is a few MB.
const maxAnswer = 64 << 20

// Client calls mynet's private API (package api) on the unix socket of a
// running mynet: the running plugin holds the state file's lock, so
// asking it is the only way to read or change its state.
type Client struct {
	sock string
	hc   *http.Client
}

// NewClient returns a client for the mynet serving on sock.
func NewClient(sock string) *Client {
	return &Client{sock: sock, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}}
}

// Ports asks mynet for the published ports q selects.
func (c *Client) Ports(ctx context.Context, q *api.PortsQuery) (*api.PortsAnswer, error) {
	ans := &api.PortsAnswer{}
	return ans, c.do(ctx, api.PortsPath, q, ans)
}

// Attach asks mynet to create an attachment.
func (c *Client) Attach(ctx context.Context, req *api.AttachRequest) (*api.AttachAnswer, error) {
	ans := &api.AttachAnswer{}
	return ans, c.do(ctx, api.AttachPath, req, ans)
}

// Detach asks mynet to remove attachments.
func (c *Client) Detach(ctx context.Context, req *api.DetachRequest) (*api.DetachAnswer, error) {
	ans := &api.DetachAnswer{}
	return ans, c.do(ctx, api.DetachPath, req, ans)
}

// Endpoints asks mynet for its networks and endpoints.
func (c *Client) Endpoints(ctx context.Context, q *api.EndpointsQuery) (*api.EndpointsAnswer, error) {
	ans := &api.EndpointsAnswer{}
	return ans, c.do(ctx, api.EndpointsPath, q, ans)
}

// Prune asks mynet to remove the records the engine no longer has.
func (c *Client) Prune(ctx context.Context, req *api.PruneRequest) (*api.PruneAnswer, error) {
	ans := &api.PruneAnswer{}
	return ans, c.do(ctx, api.PrunePath, req, ans)
}

// do posts req to path and decodes the answer into ans. Errors are
// mynet's own message, which is self-contained; a route the socket does
// not serve is ErrNotMynet.
func (c *Client) do(ctx context.Context, path string, req, ans any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://mynet"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	r.Header.Set("Content-Type", "application/vnd.docker.plugins.v1.2+json")
	resp, err := c.hc.Do(r)
	if err != nil {
		return fmt.Errorf("asking mynet on %s (is it running? --socket names its socket): %w", c.sock, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("reading mynet's answer: %w", err)
	}
	var e struct{ Err string }
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%s does not serve %s: %w", c.sock, path, ErrNotMynet)
	case json.Unmarshal(raw, &e) == nil && e.Err != "":
		return errors.New(e.Err)
	default:
		return fmt.Errorf("mynet answered HTTP %d on %s: %s", resp.StatusCode, path, raw)
	}
	if err := json.Unmarshal(raw, ans); err != nil {
		return fmt.Errorf("decoding mynet's answer: %w", err)
	}
	return nil
}
