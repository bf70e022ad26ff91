"""The notes app's scopes, MCP tools and resource. Discovered by ``mcpapp`` at start-up.

Every tool acts for the user the access token was issued to (``current_user()``); none takes a
user as an argument, so no tool can be asked for another person's notes.
"""

from typing import Annotated

from mcp.server.mcpserver.exceptions import ResourceError
from mcp.types import ToolAnnotations
from pydantic import Field, StringConstraints
from typing_extensions import TypedDict  # pydantic needs it for nested TypedDicts before Python 3.12

from authserver.scopes import Scope, scope_registry
from mcpapp.registry import current_user, mcp_registry
from notes import services
from notes.models import BODY_MAX_LENGTH, TITLE_MAX_LENGTH, Note

scope_registry.register(
    Scope("notes", "Read your notes and add new ones", covers=("notes:read", "notes:write")),
    Scope("notes:read", "Read your notes"),
    Scope("notes:write", "Add notes for you"),
)

NOTE_URI = "notes://note/{note_id}"


class NoteItem(TypedDict):
    id: int
    uri: str  # the note as an MCP resource (resources/read)
    title: str
    body: str
    created: str  # ISO 8601
    updated: str


class NotePage(TypedDict):
    notes: list[NoteItem]
    total: int  # how many notes match in all (more than listed when the limit cut them off)


def note_item(note: Note) -> NoteItem:
    return NoteItem(
        id=note.pk,
        uri=NOTE_URI.format(note_id=note.pk),
        title=note.title,
        body=note.body,
        created=note.created.isoformat(),
        updated=note.updated.isoformat(),
    )


Limit = Annotated[int, Field(ge=1, le=100, description="How many notes to return at most")]
Offset = Annotated[int, Field(ge=0, description="How many of the newest notes to skip")]
Query = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX_LENGTH)]
Body = Annotated[str, StringConstraints(max_length=BODY_MAX_LENGTH)]
READ_ONLY = ToolAnnotations(readOnlyHint=True, openWorldHint=False)


@mcp_registry.tool(scopes=["notes:read"], title="List my notes", annotations=READ_ONLY)
async def list_notes(limit: Limit = 20, offset: Offset = 0) -> NotePage:
    """Your notes, newest first."""
    notes, total = await services.note_list(owner_id=current_user().pk, limit=limit, offset=offset)
    return NotePage(notes=[note_item(note) for note in notes], total=total)


@mcp_registry.tool(scopes=["notes:read"], title="Search my notes", annotations=READ_ONLY)
async def search_notes(query: Query, limit: Limit = 20) -> NotePage:
    """Your notes whose title or text contains `query` (ignoring case), newest first."""
    notes, total = await services.note_search(owner_id=current_user().pk, query=query, limit=limit)
    return NotePage(notes=[note_item(note) for note in notes], total=total)


@mcp_registry.tool(
    scopes=["notes:write"],
    title="Add a note",
    annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False),
)
async def create_note(title: Title, body: Body = "") -> NoteItem:
    """Add a note with this title and text to your notes."""
    note = await services.note_create(owner_id=current_user().pk, title=title, body=body)
    return note_item(note)


@mcp_registry.resource(NOTE_URI, scopes=["notes:read"], title="A note", mime_type="text/markdown")
async def read_note(note_id: str) -> str:
    """One of your notes, as Markdown."""
    note = None
    if note_id.isascii() and note_id.isdigit() and len(note_id) <= 18:  # a primary key, not just any digits
        note = await services.note_get(owner_id=current_user().pk, note_id=int(note_id))
    if note is None:
        raise ResourceError(f"No note {note_id}")
    return f"# {note.title}\n\n{note.body}\n"
