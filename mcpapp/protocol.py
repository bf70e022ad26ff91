"""What the MCP server answers a client's mistakes with, as the protocol says (not as the SDK's defaults do).

The SDK's ``MCPServer`` answers a ``tools/call`` of a tool it does not have with an ``isError`` result
(which a model reads as "the tool ran and failed") and a ``prompts/get`` of an unknown prompt with
``-32603`` and an ERROR traceback in the log. Both are the client naming something that is not
there: JSON-RPC 2.0 §5.1 ``-32602`` invalid params (the MCP spec's "Error Handling" sections of
tools, prompts and resources), logged at INFO without a traceback. A server middleware (the SDK's
public ``ServerMiddleware`` seam) answers them before the handler runs.
"""

import logging
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS

from mcpapp.registry import USES, MCPRegistry

logger = logging.getLogger(__name__)


class UnknownEntries:
    """A ``ServerMiddleware``: ``-32602`` for a tool, prompt or resource that ``registry`` does not have."""

    def __init__(self, registry: MCPRegistry):
        self.registry = registry

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next):
        # A missing or non-string name is the SDK's to refuse (its params validation, also -32602).
        named = self.registry.named(ctx.method, ctx.params)
        if named is not None and self.registry.find(*named) is None:
            kind, value = named
            logger.info("Unknown %s requested: %r", kind, value)
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown {kind}: {value}", data={USES[ctx.method][1]: value})
        return await call_next(ctx)
