package cli

import "context"

// bareSocket is the bare binary's default socket (see parseConfig).
const bareSocket = pluginsDir + "/mynet.sock"

// socketFor is where the running mynet listens, found the same way by
// every subcommand: --socket (MYNET_SOCKET); else the socket of the
// plugin serving driverName (the driver of the network the command
// names), or of --driver; else the bare binary's default socket if it is
// there, else the managed plugin mynet:latest's.
func (c *commonFlags) socketFor(ctx context.Context, driverName string) (string, error) {
	if c.socket != "" {
		return c.socket, nil
	}
	if driverName == "" {
		driverName = c.driver
	}
	dk := dockerCLI{c.docker}
	if driverName != "" {
		return dk.pluginSocket(ctx, driverName)
	}
	return dk.defaultSocket(ctx)
}
