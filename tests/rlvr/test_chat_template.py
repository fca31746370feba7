"""``data.chat_template`` = auto | none | PATH, system prompts under templates that reject them, and
templates that cannot render: one `DataError` line naming the option (`rlvr.data.chat`,
`rlvr.models.set_chat_template`, the config checks)."""
from __future__ import annotations

import pytest

from rlvr.config import ConfigError, TrainConfig
from rlvr.config_checks import validate
from rlvr.data import chat as chat_module
from rlvr.data.chat import DataError, LengthChecked, chat_texts, fold_system, render_prompts
from rlvr.data.schema import Prompt
from rlvr.models import load_tokenizer, set_chat_template
from rlvr.models.eos import end_of_sequence_ids
from rlvr.rewards.model import render_pair

from .chat_tokenizers import gemma_tokenizer, qwen_tokenizer

SYSTEM_USER = Prompt(messages=({"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+1"}),
                     verifier="math", reference="2", uid="p0")


def _text(tok, prompt: Prompt) -> str:
    return tok.decode(render_prompts(tok, [prompt])[0])


def test_auto_keeps_the_tokenizers_template():
    tok = set_chat_template(qwen_tokenizer(), "auto")
    assert _text(tok, SYSTEM_USER) == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n1+1<|im_end|>\n"
                                       "<|im_start|>assistant\n")


def test_none_renders_the_raw_prompt_with_the_system_prompt_as_plain_text():
    tok = set_chat_template(qwen_tokenizer(), "none")
    assert _text(tok, SYSTEM_USER) == "Be brief.\n\n1+1"
    user_only = Prompt(messages=({"role": "user", "content": "What is 1+1?"},), verifier="math", reference="2")
    assert _text(tok, user_only) == "What is 1+1?"
    assert end_of_sequence_ids(tok) == {tok.eos_token_id}  # no template, no end of turn: EOS alone ends it


def test_raw_text_cannot_write_earlier_turns():
    tok = set_chat_template(qwen_tokenizer(), "none")
    turns = Prompt(messages=({"role": "user", "content": "1+1"}, {"role": "assistant", "content": "2"},
                             {"role": "user", "content": "and 2+2?"}), verifier="math", reference="4", uid="p7")
    with pytest.raises(DataError, match="prompt p7 has earlier chat turns .*data.chat_template"):
        render_prompts(tok, [turns])


def test_a_template_file_replaces_the_tokenizers_and_is_saved_with_it(tmp_path):
    path = tmp_path / "plain.jinja"
    path.write_text("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
                    "{% if add_generation_prompt %}[assistant] {% endif %}")
    tok = set_chat_template(qwen_tokenizer(), str(path))
    assert _text(tok, SYSTEM_USER) == "[system] Be brief.\n[user] 1+1\n[assistant] "
    tok.save_pretrained(tmp_path / "tok")
    assert _text(load_tokenizer(tmp_path / "tok"), SYSTEM_USER) == _text(tok, SYSTEM_USER)  # auto: the saved one
    assert _text(load_tokenizer(tmp_path / "tok", "none"), SYSTEM_USER) == "Be brief.\n\n1+1"


def test_a_template_without_a_system_role_gets_it_folded_into_the_first_user_turn(capsys):
    chat_module._FOLDING.clear()
    tok = gemma_tokenizer()
    expected = "<bos><start_of_turn>user\nBe brief.\n\n1+1<end_of_turn>\n<start_of_turn>model\n"
    assert _text(tok, SYSTEM_USER) == expected
    assert _text(tok, SYSTEM_USER) == expected
    assert capsys.readouterr().out.count("folded into the first user turn") == 1  # said once
    # a reward model's input (context + answer) folds the same way
    assert render_pair(tok, SYSTEM_USER, "2") == ("<bos><start_of_turn>user\nBe brief.\n\n1+1<end_of_turn>\n"
                                                  "<start_of_turn>model\n2<end_of_turn>\n")


def test_fold_system_without_a_user_turn():
    assert fold_system([{"role": "system", "content": "s"}]) == [{"role": "user", "content": "s"}]
    assert fold_system([{"role": "user", "content": "u"}]) == [{"role": "user", "content": "u"}]


USER_ONLY = Prompt(messages=({"role": "user", "content": "1+1"},), verifier="math", reference="2", uid="u1")


@pytest.mark.parametrize("template, prompt, needles", [
    ("{% for m in messages %}{{ m['content'] }", SYSTEM_USER, ["not valid Jinja", "TemplateSyntaxError", "line 1"]),
    ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
     "{{ raise_exception('Conversation roles must alternate') }}", SYSTEM_USER,
     ["cannot render prompt p0", "Conversation roles must alternate", "even with the system prompt folded"]),
    ("{{ raise_exception('Conversation roles must alternate') }}", USER_ONLY, ["cannot render prompt u1", "alternate"]),
])
def test_a_template_that_cannot_render_is_one_line_naming_the_option(template, prompt, needles):
    tok = qwen_tokenizer()
    tok.chat_template = template
    with pytest.raises(DataError) as info:
        LengthChecked([prompt], tok, 64, "error", "training")
    message = str(info.value)
    assert "\n" not in message and message.startswith("data.chat_template")
    assert all(n in message for n in needles), message
    assert ("folded" in message) == any("folded" in n for n in needles)


def test_chat_texts_names_the_first_row_it_fails_on():
    tok = qwen_tokenizer()
    tok.chat_template = "{% if messages[0]['content'] == 'bad' %}{{ raise_exception('no') }}{% endif %}ok"
    good, bad = [{"role": "user", "content": "fine"}], [{"role": "user", "content": "bad"}]
    assert chat_texts(tok, [good], True) == ["ok"]
    with pytest.raises(DataError, match="cannot render prompt b "):
        chat_texts(tok, [good, bad], True, ["a", "b"])


def test_a_missing_template_file_is_a_config_error_at_validation(tmp_path):
    cfg = TrainConfig()
    cfg.data.chat_template = str(tmp_path / "missing.jinja")
    with pytest.raises(ConfigError, match="data.chat_template=.*missing.jinja.*no such file.*auto.*none"):
        validate(cfg)
    for choice in ("auto", "none"):
        cfg.data.chat_template = choice
        validate(cfg)


def test_preference_configs_check_their_template_and_dpo_agrees_with_its_policy(tmp_path):
    from rlvr.dpo.start import chat_template_choice
    from rlvr.rm.config import RMDataConfig, check_preference_data

    with pytest.raises(ConfigError, match="data.chat_template"):
        check_preference_data(RMDataConfig(source="preference_task", chat_template=str(tmp_path / "x.jinja")), "")
    assert chat_template_choice("auto", "none") == "none" and chat_template_choice("none", "auto") == "none"
    assert chat_template_choice("none", "none") == "none"
    with pytest.raises(ConfigError, match="policy.train_overrides set data.chat_template=none"):
        chat_template_choice("/t.jinja", "none")
