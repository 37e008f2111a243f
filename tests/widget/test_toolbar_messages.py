"""The toolbar sends each control's changes as one widget message per render, not one per trait: every
message is handled by the browser (JupyterLab, ipywidgets, the DOM) on the cores the model needs for the
click it is answering."""

from __future__ import annotations

from collections import Counter
from typing import Any

import ipywidgets as widgets
import pytest

from gt_widget.widget.toolbar import Toolbar, ToolbarState


def _toolbar() -> Toolbar:
    return Toolbar(["cat", "dog"], "semantic", lambda *_a: None, "help")


def test_render_sends_one_message_per_changed_control(monkeypatch: pytest.MonkeyPatch) -> None:
    tb = _toolbar()
    before = ToolbarState(tool="auto", label="cat", labels=["cat", "dog"], mode="semantic")
    tb.render(before)
    sent: list[tuple[widgets.Widget, dict[str, Any]]] = []
    monkeypatch.setattr(widgets.Widget, "_send", lambda self, msg, buffers=None: sent.append((self, msg)))
    after = ToolbarState(
        tool="brush",
        label="dog",
        labels=["cat", "dog"],
        mode="semantic",
        positive=False,
        brush_radius=12,
        can_undo=True,
        candidates=3,
        candidate=1,
        doubt=True,
        correcting=True,
    )
    tb.render(after)
    per_widget = Counter(id(w) for w, _msg in sent)
    assert sent and max(per_widget.values()) == 1
    (cand,) = [msg for w, msg in sent if w is tb.candidate_button]
    assert {"disabled", "description", "button_style", "tooltip"} <= set(cand["state"])
    assert cand["state"]["description"] == "2/3" and cand["state"]["disabled"] is False
    (brush,) = [msg for w, msg in sent if w is tb.brush]
    assert brush["state"]["value"] == 12
    # what the controls show is what was rendered (nothing lost by batching)
    assert tb.polarity.description == "remove" and not tb.action_buttons["undo"].disabled
    assert tb.done.layout.display == ""


def test_render_of_an_unchanged_state_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    tb = _toolbar()
    state = ToolbarState(tool="auto", label="cat", labels=["cat", "dog"], mode="semantic", candidates=2, doubt=True)
    tb.render(state)
    sent: list[Any] = []
    monkeypatch.setattr(widgets.Widget, "_send", lambda self, msg, buffers=None: sent.append(msg))
    tb.render(state)
    assert sent == []
