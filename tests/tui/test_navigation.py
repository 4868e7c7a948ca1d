"""No focus traps: screen keys from inside editors and text boxes, Escape out of them, digits typed stay typed."""

from __future__ import annotations

from helpers import wait_until
from textual.widgets import DataTable, Input, TextArea


def named(app, name: str) -> bool:
    return type(app.screen).__name__ == name


async def test_ctrl_pagedown_leaves_the_recipe_editor_and_the_chat_box(fake_ws, make_app) -> None:
    app = make_app(fake_ws)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: named(app, "JobsScreen"))
        await pilot.press("5")
        await wait_until(pilot, lambda: named(app, "NewRunScreen"))
        editor = app.screen.query_one("#newrun-yaml", TextArea)
        editor.focus()
        await pilot.pause()
        before = editor.text
        await pilot.press("6")  # a digit in the editor is text, not a screen key
        await pilot.pause()
        assert named(app, "NewRunScreen") and editor.text != before and "6" in editor.text
        await pilot.press("ctrl+pagedown")
        await wait_until(pilot, lambda: named(app, "ChatScreen"))
        assert isinstance(app.focused, Input) and app.focused.id == "chat-prompt"
        await pilot.press("7")
        assert named(app, "ChatScreen") and app.focused.value == "7"
        await pilot.press("ctrl+pagedown")
        await wait_until(pilot, lambda: named(app, "EvalsScreen"))
        await pilot.press("ctrl+pagedown")  # wraps around to the first screen
        await wait_until(pilot, lambda: named(app, "JobsScreen"))
        await pilot.press("ctrl+pageup")
        await wait_until(pilot, lambda: named(app, "EvalsScreen"))


async def test_escape_leaves_the_editor_and_any_text_box(fake_ws, make_app) -> None:
    app = make_app(fake_ws)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: named(app, "JobsScreen"))
        # a text box on a screen that gives Esc no meaning of its own: focus goes to the screen's list
        box = Input(id="probe")
        await app.screen.mount(box)
        box.focus()
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.focused, DataTable) and app.focused.id == "jobs-table"
        await pilot.press("5")
        await wait_until(pilot, lambda: named(app, "NewRunScreen"))
        app.screen.query_one("#newrun-yaml", TextArea).focus()
        await pilot.pause()
        await pilot.press("escape", "4")  # out of the editor, then a digit is a screen key again
        await wait_until(pilot, lambda: named(app, "ModelsScreen"))
        app.screen.query_one("#md-seq", Input).focus()
        await pilot.press("escape", "2")
        await wait_until(pilot, lambda: named(app, "RunsScreen"))


async def test_footer_shows_the_screen_keys_first(fake_ws, make_app) -> None:
    from textual.widgets import Footer
    from textual.widgets._footer import FooterKey

    app = make_app(fake_ws)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        await wait_until(pilot, lambda: named(app, "NewRunScreen") and app.screen.query(FooterKey))
        footer = app.screen.query_one(Footer)

        def labels() -> list[str]:
            return [str(w.render()) for w in footer.walk_children() if not isinstance(w, FooterKey)]

        await wait_until(pilot, lambda: "Screens" in labels(), what="the footer's Screens entry")
        keys = [k for k in app.screen.query(FooterKey) if "-command-palette" not in k.classes]
        assert [k.key for k in keys[:2]] == ["ctrl+pageup", "ctrl+pagedown"]
        assert keys[0].region.x < 10 and keys[1].region.right < 80  # first in the footer: never cut off at 80
