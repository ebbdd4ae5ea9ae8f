"""The Prompt page shows each rule the prompt states beside the check that flags it (AppTest): a check in
step with the text follows an edit of it, a check set apart is said to differ, and one click aligns it."""

from __future__ import annotations

import pytest

from tests.apptest_helpers import choose_prompt, new_app, upload, workspace

pytestmark = pytest.mark.usefixtures("app_env")


def plain(text: str) -> str:
    return text.replace("\\", "")


def rule_table(at) -> list[dict[str, str]]:
    frame = at.table[0].value
    return frame.to_dict("records")


def warnings(at) -> list[str]:
    return [plain(w.value) for w in at.warning if "The prompt says" in plain(w.value)]


def test_the_rule_and_its_check_stay_one_value_on_the_prompt_page():
    at = choose_prompt(upload(new_app()), "Icebreaker")
    assert rule_table(at) == [
        {"rule": "Words", "the prompt says": "at most 25 words", "the check flags": "answers over 25 words",
         "": "in step"},
        {"rule": "Exclamation marks", "the prompt says": "none", "the check flags": "any '!'", "": "in step"},
    ]  # fmt: skip
    assert warnings(at) == [] and not [b for b in at.button if b.key == "btn_align_checks"]
    # The checks are in view next to the prompt: no expander hides them.
    assert at.number_input(key="p_max_words").value == 25
    assert not [e for e in at.expander if "check" in e.label.lower()]

    # The person tightens the rule in the prompt: the check, which was in step, follows and says so.
    system = at.text_area(key="p_system")
    system.set_value(system.value.replace("at most 25 words", "at most 18 words")).run()
    assert not at.exception, at.exception
    assert workspace(at).draft.checks.max_words == 18
    assert at.number_input(key="p_max_words").value == 18
    said = [plain(s.value) for s in at.success]
    assert "The check now flags answers over 18 words, as the prompt says (it allowed 25)." in said
    assert (
        rule_table(at)[0]["the check flags"] == "answers over 18 words" and rule_table(at)[0][""] == "in step"
    )

    # A check set apart by hand differs from the prompt: the page says so and offers to align it.
    at.number_input(key="p_max_words").set_value(30).run()
    assert warnings(at) == ["The prompt says at most 18 words; its check allows 30."]
    assert rule_table(at)[0][""] == "differs"
    at.button(key="btn_align_checks").click().run()
    assert not at.exception, at.exception
    assert workspace(at).draft.checks.max_words == 18 and warnings(at) == []
    assert at.number_input(key="p_max_words").value == 18

    # A limit the check never counted: stated in the template, the check starts counting.
    template = at.text_area(key="p_template")
    template.set_value(template.value + "\nKeep it under 120 characters.").run()
    assert workspace(at).draft.checks.max_chars == 119
    assert {"rule": "Characters", "the prompt says": "at most 119 characters",
            "the check flags": "answers over 119 characters", "": "in step"} in rule_table(at)  # fmt: skip


def test_a_stated_rule_the_check_does_not_look_for_is_offered_to_it():
    at = choose_prompt(upload(new_app()), "Icebreaker")
    banned = at.text_area(key="p_banned")
    banned.set_value("\n".join(line for line in banned.value.splitlines() if line != "!")).run()
    assert warnings(at) == ["The prompt says no exclamation marks; its check does not look for them."]
    at.button(key="btn_align_checks").click().run()
    assert "!" in workspace(at).draft.checks.banned and warnings(at) == []
