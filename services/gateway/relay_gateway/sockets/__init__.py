"""Socket.IO handlers, one module per dialect, registered through `SocketRouter`."""
