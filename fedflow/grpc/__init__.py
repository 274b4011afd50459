"""fedflow over gRPC: the codec, the error mapping and the handlers of fedflow.v1, the server
that serves one engine, channels, security, and the replica stream. The control client that
uses them is `fedflow.client`."""
