// Package api is the wire contract of mynet's private API: the routes the
// mynet CLI calls on the plugin's socket, next to the Docker plugin API,
// and their JSON requests and answers. The engine never calls these
// routes. The plugin serves them (package plugin), the CLI calls them
// (package cli); both import this package, which imports nothing of
// mynet's, so the CLI does not link the driver.
//
// Every route is an HTTP POST of a JSON request; a success answers 200
// with the JSON answer, a failure answers non-200 with {"Err": "..."}, a
// self-contained message. The routes answer once the plugin's start-up
// restore is done, so they show what the kernel holds.
package api

// Routes of the private API.
const (
	// PortsPath takes a PortsQuery and answers a PortsAnswer, for `mynet
	// ports` (the engine cannot show a remote driver's ports:
	// moby/libnetwork#2451).
	PortsPath = "/Mynet.Ports"
	// AttachPath takes an AttachRequest and answers an AttachAnswer, for
	// `mynet attach`.
	AttachPath = "/Mynet.Attach"
	// DetachPath takes a DetachRequest and answers a DetachAnswer, for
	// `mynet detach` and the rollback of a failed attach.
	DetachPath = "/Mynet.Detach"
	// EndpointsPath takes an EndpointsQuery and answers an
	// EndpointsAnswer, for `mynet ls` and `mynet inspect`.
	EndpointsPath = "/Mynet.Endpoints"
	// PrunePath takes a PruneRequest and answers a PruneAnswer, for
	// `mynet prune`.
	PrunePath = "/Mynet.Prune"
)
