# The managed plugin's rootfs, for machines that can pull base images.
# `make plugin` builds the same thing offline from the build machine's files.
#
#   docker build -t mynet-rootfs .
#   id=$(docker create mynet-rootfs)
#   rm -rf plugin-build && mkdir -p plugin-build/rootfs
#   docker export "$id" | tar -x -C plugin-build/rootfs
#   docker rm "$id"
#   cp config.json plugin-build/
#   docker plugin create mynet:latest plugin-build
#   docker plugin enable mynet:latest     # after: mkdir -p /var/lib/mynet
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o /out/mynet .

FROM debian:bookworm-slim
# iptables brings both backends (iptables-nft, iptables-legacy); mynet
# picks the one the host's Docker uses. The mount points and the socket
# directory must exist in the rootfs.
RUN apt-get update \
	&& apt-get install -y --no-install-recommends iptables \
	&& rm -rf /var/lib/apt/lists/* \
	&& mkdir -p /run/docker/plugins /var/lib/mynet /host/proc/sys/net \
	&& touch /run/xtables.lock
COPY --from=build /out/mynet /usr/sbin/mynet
ENTRYPOINT ["/usr/sbin/mynet"]
