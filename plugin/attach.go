package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/mynet/mynet/driver"
)

// mynet's private routes for `mynet attach`, `detach`, `ls` and `inspect`;
// the engine never calls them. Like PortsPath they answer once start-up
// restore is done (see WaitReady).
const (
	AttachPath    = "/Mynet.Attach"
	DetachPath    = "/Mynet.Detach"
	EndpointsPath = "/Mynet.Endpoints"
)

// attacher is the driver side of the attach routes; *driver.Driver fits.
type attacher interface {
	Attach(*driver.AttachRequest) (*driver.AttachAnswer, error)
	Detach(*driver.DetachRequest) (*driver.DetachAnswer, error)
	Endpoints(*driver.EndpointsQuery) (*driver.EndpointsAnswer, error)
}

// handleAttach registers the attach routes with h (NewHandler's
// registration function) when the driver serves them.
func handleAttach(h func(string, func([]byte) (any, error)), d any) {
	a, ok := d.(attacher)
	if !ok {
		return
	}
	h(AttachPath, call(a.Attach))
	h(DetachPath, call(a.Detach))
	h(EndpointsPath, call(a.Endpoints))
}

// ErrNotMynet: the socket answered, but not the route: whatever serves it
// is not mynet (or a mynet too old for the command).
var ErrNotMynet = errors.New("not a mynet socket")

// Client calls mynet's private routes on the unix socket of a running
// mynet: the running plugin holds the state file's lock, so asking it is
// the only way to read or change its state.
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

// Attach asks mynet to create an attachment.
func (c *Client) Attach(ctx context.Context, req *driver.AttachRequest) (*driver.AttachAnswer, error) {
	ans := &driver.AttachAnswer{}
	return ans, c.do(ctx, AttachPath, req, ans)
}

// Detach asks mynet to remove attachments.
func (c *Client) Detach(ctx context.Context, req *driver.DetachRequest) (*driver.DetachAnswer, error) {
	ans := &driver.DetachAnswer{}
	return ans, c.do(ctx, DetachPath, req, ans)
}

// Endpoints asks mynet for its networks and endpoints.
func (c *Client) Endpoints(ctx context.Context, q *driver.EndpointsQuery) (*driver.EndpointsAnswer, error) {
	ans := &driver.EndpointsAnswer{}
	return ans, c.do(ctx, EndpointsPath, q, ans)
}

// do posts req to path and decodes the answer into ans. Errors are
// mynet's own message, which is self-contained.
func (c *Client) do(ctx context.Context, path string, req, ans any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://mynet"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	r.Header.Set("Content-Type", contentType)
	resp, err := c.hc.Do(r)
	if err != nil {
		return fmt.Errorf("asking mynet on %s (is it running? --socket names its socket): %w", c.sock, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
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
