package plugin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/mynet/mynet/driver"
	"github.com/mynet/mynet/internal/fake"
	"github.com/mynet/mynet/ipam"
)

var fuzzRoutes = []string{
	"/Plugin.Activate",
	"/NetworkDriver.GetCapabilities", "/NetworkDriver.CreateNetwork", "/NetworkDriver.DeleteNetwork",
	"/NetworkDriver.CreateEndpoint", "/NetworkDriver.DeleteEndpoint", "/NetworkDriver.EndpointOperInfo",
	"/NetworkDriver.Join", "/NetworkDriver.Leave", "/NetworkDriver.ProgramExternalConnectivity",
	"/NetworkDriver.RevokeExternalConnectivity", "/NetworkDriver.AllocateNetwork",
	"/IpamDriver.GetCapabilities", "/IpamDriver.GetDefaultAddressSpaces", "/IpamDriver.RequestPool",
	"/IpamDriver.ReleasePool", "/IpamDriver.RequestAddress", "/IpamDriver.ReleaseAddress",
	"/NetworkDriver.Bogus",
}

// FuzzDispatch sends arbitrary bodies to every route of a plugin with the
// real driver and IPAM over a fake kernel and store. Whatever arrives, the
// plugin must not crash and must answer a JSON object: 200 for success,
// 404 for an unknown route, 500 with a non-empty Err otherwise.
func FuzzDispatch(f *testing.F) {
	seeds := []struct {
		route uint8
		body  string
	}{
		{14, `{"AddressSpace":"mynet-local","Pool":"10.50.0.0/24"}`},
		{14, `{"AddressSpace":"mynet-local","Pool":"","V6":true}`},
		{16, `{"PoolID":"mynet-local/10.50.0.0/24","Options":{"RequestAddressType":"com.docker.network.gateway"}}`},
		{16, `{"PoolID":"mynet-local/10.50.0.0/24","Address":"10.50.0.7"}`},
		{2, `{"NetworkID":"n1","Options":{"com.docker.network.generic":{"com.docker.network.driver.mtu":"1400"}},"IPv4Data":[{"Pool":"10.50.0.0/24","Gateway":"10.50.0.1/24"}]}`},
		{4, `{"NetworkID":"n1","EndpointID":"e1","Interface":{"Address":"10.50.0.7/24"}}`},
		{7, `{"NetworkID":"n1","EndpointID":"e1","SandboxKey":"/x"}`},
		{9, `{"NetworkID":"n1","EndpointID":"e1","Options":{"com.docker.network.portmap":[{"Proto":6,"Port":80,"HostPort":8080}]}}`},
		{5, `{"NetworkID":"n1","EndpointID":"e1"}`},
		{3, `{"NetworkID":"n1"}`},
		{0, ``},
		{2, `{"NetworkID":`},
		{2, `[1,2,3]`},
		{4, `{"Interface":null}`},
		{2, `{"NetworkID":"n2","Options":{"com.docker.network.generic":{"com.docker.network.bridge.name":"docker0\u0000","com.docker.network.driver.mtu":"9000"}},"IPv4Data":[{"Pool":"10.52.0.0/24"}]}`},
		{2, `{"NetworkID":"\u00e9\u00e9\u00e9\u00e9\u00e9\u0000","IPv4Data":[{"Pool":"127.0.0.0/8"}]}`},
		{4, `{"NetworkID":"n1","EndpointID":"e\u00002","Interface":{"Address":"10.50.0.1/24"}}`},
	}
	for _, s := range seeds {
		f.Add(s.route, []byte(s.body))
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	entry := logrus.NewEntry(log)
	st := fake.NewStore()
	am, err := ipam.New(st, ipam.Config{}, entry)
	if err != nil {
		f.Fatal(err)
	}
	k := fake.NewKernel()
	d, err := driver.New(k, fake.Firewall{}, fake.Firewall{}, st, entry, driver.WithPortReserver(k))
	if err != nil {
		f.Fatal(err)
	}
	h := NewHandler(d, am, entry)
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		path := fuzzRoutes[int(route)%len(fuzzRoutes)]
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(string(body))))
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s answered non-JSON %q", path, rec.Body.String())
		}
		switch rec.Code {
		case http.StatusOK:
		case http.StatusNotFound, http.StatusInternalServerError:
			if msg, _ := out["Err"].(string); msg == "" {
				t.Fatalf("%s: %d without Err: %v", path, rec.Code, out)
			}
		default:
			t.Fatalf("%s: unexpected status %d", path, rec.Code)
		}
	})
}
