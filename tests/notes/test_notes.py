"""The notes demo app: its tools act for the token's user only, validate what they are given, and its admin works."""

import pytest

from notes.models import Note
from tests.factories import make_access_token, make_client, make_user
from tests.mcpapp.helpers import mcp_session

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def bob():
    return make_user("bob")


def use(user, interaction, scope="mcp notes"):
    return mcp_session(make_access_token(user, make_client(), scope=scope), interaction)


def tool(name, **arguments):
    return lambda client: client.call_tool(name, arguments)


def test_list_notes_shows_the_newest_first_with_a_total_and_a_limit(alice):
    for title in ("first", "second", "third"):
        Note.objects.create(owner=alice, title=title)
    page = use(alice, tool("list_notes", limit=2)).structured_content
    assert [note["title"] for note in page["notes"]] == ["third", "second"]
    assert page["total"] == 3
    rest = use(alice, tool("list_notes", limit=2, offset=2)).structured_content
    assert [note["title"] for note in rest["notes"]] == ["first"]


def test_search_notes_matches_title_or_body_ignoring_case(alice):
    Note.objects.create(owner=alice, title="Birthday ideas", body="a KITE")
    Note.objects.create(owner=alice, title="Kite festival", body="Sunday")
    Note.objects.create(owner=alice, title="Taxes", body="due in April")
    found = use(alice, tool("search_notes", query="  kite ")).structured_content
    assert sorted(note["title"] for note in found["notes"]) == ["Birthday ideas", "Kite festival"]
    assert found["total"] == 2


def test_create_note_stores_it_for_the_tokens_user_and_returns_its_uri(alice, bob):
    created = use(alice, tool("create_note", title="  Call mum ", body="Sunday")).structured_content
    note = Note.objects.get()
    assert note.owner == alice
    assert note.title == "Call mum"
    assert created["id"] == note.pk
    assert created["uri"] == f"notes://note/{note.pk}"


@pytest.mark.parametrize(
    "arguments",
    [{"title": "   "}, {"title": "x" * 201}, {"title": "ok", "body": "x" * 20_001}, {}],
    ids=["blank-title", "long-title", "long-body", "no-title"],
)
def test_create_note_refuses_bad_input_with_a_tool_error_and_stores_nothing(alice, arguments):
    result = use(alice, tool("create_note", **arguments))
    assert result.is_error
    assert "title" in result.content[0].text or "body" in result.content[0].text
    assert not Note.objects.exists()


@pytest.mark.parametrize("arguments", [{"limit": 0}, {"limit": 101}, {"offset": -1}])
def test_list_notes_refuses_out_of_range_paging(alice, arguments):
    result = use(alice, tool("list_notes", **arguments))
    assert result.is_error


def test_no_tool_or_resource_ever_shows_one_persons_notes_to_another(alice, bob):
    secret = Note.objects.create(owner=alice, title="Alice's diary", body="the password is swordfish")
    Note.objects.create(owner=bob, title="Bob's list", body="milk")

    async def look_around(client):
        listed = await client.call_tool("list_notes", {"limit": 100})
        searched = await client.call_tool("search_notes", {"query": "swordfish"})
        try:
            await client.read_resource(f"notes://note/{secret.pk}")
        except Exception as error:  # the SDK raises the server's JSON-RPC error
            unreadable = str(error)
        return listed.structured_content, searched.structured_content, unreadable

    listed, searched, unreadable = use(bob, look_around)
    assert [note["title"] for note in listed["notes"]] == ["Bob's list"]
    assert searched == {"notes": [], "total": 0}
    # Someone else's note reads exactly like one that does not exist.
    assert unreadable == f"No note {secret.pk}"
    assert "swordfish" not in str(listed) + unreadable


@pytest.mark.parametrize("note_id", ["abc", "99999999999999999999999", "١٢", "0"])
def test_reading_a_note_that_cannot_exist_is_a_clear_error(alice, note_id):
    async def read(client):
        try:
            await client.read_resource(f"notes://note/{note_id}")
        except Exception as error:
            return str(error)

    assert use(alice, read) == f"No note {note_id}"


def test_admin_lists_and_searches_notes_with_their_owners(admin_client, alice, bob):
    Note.objects.create(owner=alice, title="Alice's plan")
    Note.objects.create(owner=bob, title="Bob's plan")
    page = admin_client.get("/admin/notes/note/", {"q": "alice"})
    assert page.status_code == 200
    assert b"Alice&#x27;s plan" in page.content
    assert b"Bob&#x27;s plan" not in page.content
    note = Note.objects.get(owner=alice)
    assert admin_client.get(f"/admin/notes/note/{note.pk}/change/").status_code == 200
