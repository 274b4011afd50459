"""The baseline child of workload 3: a raw grpcio unary echo, bytes in and bytes out.

    python bench/peer_echo.py [--listen 127.0.0.1:0]

Prints `PORT <n>` once it listens and serves until SIGTERM. It is a grpc.aio
server with a generic handler and no
(de)serialisers that answers inline on the event loop: the least work a
Python gRPC echo can do. fedflow's own side of the workload is a real
`fedflow serve --load bench/flows.py` child.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import grpc

ECHO_METHOD = "/bench.Echo/Echo"
MAX_MESSAGE = 8 * 1024 * 1024


def announce(port: int) -> None:
    """Tell the parent the bound port (the one line it waits for)."""
    print(f"PORT {port}", flush=True)


async def _serve_raw(address: str) -> None:
    async def echo(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        return request

    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)})
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                      ("grpc.max_send_message_length", MAX_MESSAGE)])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(address)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    announce(port)
    await stop.wait()
    await server.stop(0.5)


def serve_raw(address: str) -> None:
    """Serve the raw echo until SIGTERM."""
    asyncio.run(_serve_raw(address))


def main(argv: list[str] | None = None) -> None:
    """Parse the flags and serve."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:0")
    serve_raw(parser.parse_args(argv).listen)


if __name__ == "__main__":
    main()
