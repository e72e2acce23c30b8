"""The gateway: sockets, handshake auth, dialect rendering, REST edge."""
