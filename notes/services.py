"""What can be done with notes, for one owner at a time. Async: the MCP tools call these on the event loop."""

from django.db.models import Q

from notes.models import Note


async def note_list(*, owner_id: int, limit: int, offset: int = 0) -> tuple[list[Note], int]:
    """The owner's notes, newest first, and how many they have in all."""
    notes = Note.objects.filter(owner_id=owner_id)
    return [note async for note in notes[offset : offset + limit]], await notes.acount()


async def note_search(*, owner_id: int, query: str, limit: int) -> tuple[list[Note], int]:
    """The owner's notes whose title or body contains ``query`` (case-insensitive), newest first."""
    notes = Note.objects.filter(Q(title__icontains=query) | Q(body__icontains=query), owner_id=owner_id)
    return [note async for note in notes[:limit]], await notes.acount()


async def note_get(*, owner_id: int, note_id: int) -> Note | None:
    """One of the owner's notes; another person's note is as absent as one that never existed."""
    return await Note.objects.filter(owner_id=owner_id, pk=note_id).afirst()


async def note_create(*, owner_id: int, title: str, body: str) -> Note:
    return await Note.objects.acreate(owner_id=owner_id, title=title, body=body)
