package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"
	"github.com/sirupsen/logrus"
)

// fakeDriver answers every call; CreateNetwork fails for NetworkID "bad".
type fakeDriver struct {
	network.Driver // unimplemented methods panic, proving they are not called
	created        []string
}

func (f *fakeDriver) GetCapabilities() (*network.CapabilitiesResponse, error) {
	return &network.CapabilitiesResponse{Scope: "local", ConnectivityScope: "local"}, nil
}

func (f *fakeDriver) CreateNetwork(r *network.CreateNetworkRequest) error {
	if r.NetworkID == "bad" {
		return errors.New("subnet 10.0.0.0/8 overlaps")
	}
	f.created = append(f.created, r.NetworkID)
	return nil
}

func (f *fakeDriver) CreateEndpoint(*network.CreateEndpointRequest) (*network.CreateEndpointResponse, error) {
	return nil, nil
}

type fakeIPAM struct{ ipam.Ipam }

func (fakeIPAM) GetCapabilities() (*ipam.CapabilitiesResponse, error) {
	return &ipam.CapabilitiesResponse{}, nil
}

func (fakeIPAM) GetDefaultAddressSpaces() (*ipam.AddressSpacesResponse, error) {
	return &ipam.AddressSpacesResponse{LocalDefaultAddressSpace: "l", GlobalDefaultAddressSpace: "g"}, nil
}

func (fakeIPAM) RequestAddress(*ipam.RequestAddressRequest) (*ipam.RequestAddressResponse, error) {
	return nil, errors.New("pool 10.50.0.0/29 has no free address")
}

func post(t *testing.T, h http.Handler, path, body string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
	raw, _ := io.ReadAll(rec.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s answered non-JSON %q", path, raw)
	}
	return rec.Code, out
}

func TestHandler(t *testing.T) {
	l := logrus.New()
	l.SetOutput(io.Discard)
	d := &fakeDriver{}
	h := NewHandler(d, fakeIPAM{}, logrus.NewEntry(l))

	code, out := post(t, h, "/Plugin.Activate", "")
	if code != 200 || len(out["Implements"].([]any)) != 2 {
		t.Errorf("Activate: %d %v", code, out)
	}
	code, out = post(t, h, "/NetworkDriver.GetCapabilities", "")
	if code != 200 || out["Scope"] != "local" || out["ConnectivityScope"] != "local" {
		t.Errorf("GetCapabilities: %d %v", code, out)
	}
	code, out = post(t, h, "/IpamDriver.GetCapabilities", "")
	if code != 200 || out["RequiresRequestReplay"] != false || out["RequiresMACAddress"] != false {
		t.Errorf("IPAM GetCapabilities: %d %v", code, out)
	}
	code, out = post(t, h, "/IpamDriver.GetDefaultAddressSpaces", "")
	if code != 200 || out["LocalDefaultAddressSpace"] != "l" {
		t.Errorf("GetDefaultAddressSpaces: %d %v", code, out)
	}
	// Unknown fields from newer engines are tolerated.
	code, out = post(t, h, "/NetworkDriver.CreateNetwork", `{"NetworkID":"n1","FutureField":1}`)
	if code != 200 || len(out) != 0 || len(d.created) != 1 {
		t.Errorf("CreateNetwork: %d %v", code, out)
	}
	code, out = post(t, h, "/NetworkDriver.CreateNetwork", `{"NetworkID":"bad"}`)
	if code != 500 || out["Err"] != "subnet 10.0.0.0/8 overlaps" {
		t.Errorf("failing CreateNetwork: %d %v", code, out)
	}
	code, out = post(t, h, "/NetworkDriver.CreateNetwork", `{"NetworkID":`)
	if code != 500 || !strings.Contains(out["Err"].(string), "malformed request") {
		t.Errorf("malformed JSON: %d %v", code, out)
	}
	// A nil response still answers a JSON object.
	code, out = post(t, h, "/NetworkDriver.CreateEndpoint", `{}`)
	if code != 200 || out == nil {
		t.Errorf("nil response: %d %v", code, out)
	}
	// IPAM errors carry both Err (HTTP layer) and Error (IPAM proxy).
	code, out = post(t, h, "/IpamDriver.RequestAddress", `{"PoolID":"p"}`)
	if code != 500 || out["Err"] != out["Error"] || !strings.Contains(out["Err"].(string), "no free address") {
		t.Errorf("IPAM error: %d %v", code, out)
	}
	code, out = post(t, h, "/NetworkDriver.Bogus", `{}`)
	if code != 404 || out["Err"] == nil {
		t.Errorf("unknown route: %d %v", code, out)
	}
}

func TestWaitReadyLetsCapabilitiesThrough(t *testing.T) {
	ready := make(chan struct{})
	reached := 0
	h := WaitReady(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++ }), ready)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/NetworkDriver.GetCapabilities", nil))
	if reached != 1 {
		t.Fatal("GetCapabilities waited for start-up")
	}
	done := make(chan struct{})
	go func() {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/NetworkDriver.CreateNetwork", nil))
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("CreateNetwork ran before start-up finished")
	default:
	}
	close(ready)
	<-done
	if reached != 2 {
		t.Fatal("CreateNetwork not served after start-up")
	}
}

// A body over the limit is refused whole with 413 and nothing is done: cut
// at the limit, this one would still decode (a request padded with
// whitespace) and create the network.
func TestOverLimitBodyRefused(t *testing.T) {
	l := logrus.New()
	l.SetOutput(io.Discard)
	d := &fakeDriver{}
	h := NewHandler(d, fakeIPAM{}, logrus.NewEntry(l))
	body := `{"NetworkID":"n1"}` + strings.Repeat(" ", maxBody) + `,"trailing"`
	code, out := post(t, h, "/NetworkDriver.CreateNetwork", body)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(fmt.Sprint(out["Err"]), "over mynet's limit") {
		t.Errorf("over-limit body: %d %v, want 413 with an Err", code, out)
	}
	if len(d.created) != 0 {
		t.Errorf("the cut request was executed: created %v", d.created)
	}
}

// The largest port bindings a container can have, a 65,535-port range in
// each of tcp and udp as the engine writes them, fit the limit.
func TestFullPortRangeFitsLimit(t *testing.T) {
	l := logrus.New()
	l.SetOutput(io.Discard)
	d := &fakeDriver{}
	// The call's deadline covers decoding the body: 14 MB under -race on a
	// busy machine took over the default 10 s once. This test is about the
	// size limit, not the deadline (deadline_test.go is).
	h := NewHandler(d, fakeIPAM{}, logrus.NewEntry(l), WithDeadline(5*time.Minute))
	body := `{"NetworkID":"n1","EndpointID":"e1","Interface":{"Address":"10.0.0.2/24"},"Options":` + portOptions(6, 17) + `}`
	t.Logf("%d bytes, %.1f%% of the limit", len(body), 100*float64(len(body))/maxBody)
	if code, out := post(t, h, "/NetworkDriver.CreateEndpoint", body); code != http.StatusOK {
		t.Errorf("full range: %d %v", code, out)
	}
}

// portOptions are the endpoint options of `-p 1-65535:1-65535/PROTO` for
// each of protos, as the engine sends them: every port a binding and an
// exposed port (107 bytes a port, measured on 20.10 and 28.5).
func portOptions(protos ...int) string {
	var bindings, exposed []string
	for _, proto := range protos {
		for p := 1; p <= 65535; p++ {
			bindings = append(bindings, fmt.Sprintf(`{"Proto":%d,"IP":"","Port":%d,"HostIP":"","HostPort":%d,"HostPortEnd":%d}`, proto, p, p, p))
			exposed = append(exposed, fmt.Sprintf(`{"Proto":%d,"Port":%d}`, proto, p))
		}
	}
	return `{"com.docker.network.endpoint.exposedports":[` + strings.Join(exposed, ",") + `],` +
		`"com.docker.network.portmap":[` + strings.Join(bindings, ",") + `]}`
}
