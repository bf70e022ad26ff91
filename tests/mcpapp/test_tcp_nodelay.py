"""Responses leave at once on keep-alive connections (TCP_NODELAY), with ``runserver`` and with the
production command's several workers.

asyncio turns Nagle's algorithm off only on accepted sockets whose protocol says IPPROTO_TCP, which
they inherit from the listening socket. A listener made without it (uvicorn before 0.55 with
``--workers N``, uvicorn#3149) leaves Nagle on, and every keep-alive request after the first waits
~40 ms for the client's delayed ACK: the multi-worker benchmark answered in a steady 44 ms.
"""

import asyncio
import socket

import uvicorn

from mcpapp.management.commands.runserver import UvicornServer


def accepted_connections_nodelay(listener: socket.socket) -> int:
    """TCP_NODELAY on a connection accepted by asyncio's server from ``listener``, as uvicorn serves."""

    async def accept_one() -> int:
        loop = asyncio.get_running_loop()
        seen: asyncio.Future[int] = loop.create_future()

        class Report(asyncio.Protocol):
            def connection_made(self, transport):
                sock = transport.get_extra_info("socket")
                seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await loop.create_server(Report, sock=listener)
        try:
            _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
            result = await asyncio.wait_for(seen, timeout=10)
            writer.close()
            return result
        finally:
            server.close()

    return asyncio.run(accept_one())


def test_runserver_answers_keep_alive_requests_without_the_nagle_delay():
    server = UvicornServer(("127.0.0.1", 0))
    assert accepted_connections_nodelay(server.socket)


def test_the_production_commands_workers_answer_keep_alive_requests_without_the_nagle_delay():
    # What uvicorn's supervisor binds for --workers N and hands to every worker.
    listener = uvicorn.Config("config.asgi:application", host="127.0.0.1", port=0).bind_socket()
    assert accepted_connections_nodelay(listener)
