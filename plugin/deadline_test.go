package plugin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/sirupsen/logrus"
)

// slowDriver's CreateEndpoint runs until the test releases it, so it
// finishes after the deadline however slow the machine is, and records
// the DeleteEndpoint that undoes it.
type slowDriver struct {
	fakeDriver
	release chan struct{}
	mu      sync.Mutex
	deleted []string
}

func (s *slowDriver) CreateEndpoint(*network.CreateEndpointRequest) (*network.CreateEndpointResponse, error) {
	<-s.release
	return &network.CreateEndpointResponse{}, nil
}

func (s *slowDriver) DeleteEndpoint(r *network.DeleteEndpointRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleted = append(s.deleted, r.EndpointID)
	return nil
}

func TestDeadlineAnswersAndUndoesLateSuccess(t *testing.T) {
	l := logrus.New()
	l.SetOutput(io.Discard)
	d := &slowDriver{release: make(chan struct{})}
	h := NewHandler(d, fakeIPAM{}, logrus.NewEntry(l), WithDeadline(20*time.Millisecond))

	// The answer comes while CreateEndpoint still runs: it is not
	// released until then.
	code, out := post(t, h, "/NetworkDriver.CreateEndpoint", `{"NetworkID":"n1","EndpointID":"e1"}`)
	if code != http.StatusInternalServerError || !strings.Contains(out["Err"].(string), "did not finish within 20ms") {
		t.Fatalf("late call: %d %v", code, out)
	}
	close(d.release)
	deadline := time.Now().Add(30 * time.Second)
	for {
		d.mu.Lock()
		got := strings.Join(d.deleted, ",")
		d.mu.Unlock()
		if got == "e1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("late CreateEndpoint not undone; deleted = %q", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A call within its deadline is untouched.
	if code, _ := post(t, h, "/NetworkDriver.GetCapabilities", ""); code != http.StatusOK {
		t.Errorf("fast call: %d", code)
	}
}

func TestWaitReadyGivesUp(t *testing.T) {
	h := waitReady(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), make(chan struct{}), 50*time.Millisecond)
	rec := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/NetworkDriver.CreateNetwork", nil))
	if rec.Code != http.StatusServiceUnavailable || time.Since(start) > time.Second {
		t.Errorf("got %d after %v", rec.Code, time.Since(start))
	}
}
