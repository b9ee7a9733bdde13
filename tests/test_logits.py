"""Generation logit trace: equals step-by-step decoding of the untraced model; sampling is reproducible."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from lmxray.errors import LmxrayError
from lmxray.models.loader import from_hf
from lmxray.probes.generate import CONFIDENT, NO_IDEA, confidence_flag, logit_trace
from cli_helpers import assert_user_error, run
from tiny_models import BosTokenizer, tiny_model

PROB_TOL = 1e-5  # step probabilities vs softmax of the eager model's logits
LOGIT_TOL = 1e-4  # raw logits vs the eager model's (fp32, different attention kernels)
PROMPT = "hello wor"


@pytest.fixture(scope="module")
def tiny_pair():
    base = tiny_model("llama")
    return from_hf(base, BosTokenizer(), "tiny-llama"), copy.deepcopy(base)


def eager_step(eager, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return eager(torch.tensor([ids]), use_cache=False).logits[0, -1].double()


def test_greedy_trace_equals_step_by_step_eager_decoding(tiny_pair):
    model, eager = tiny_pair
    result = logit_trace(model, PROMPT, steps=6, top_k=4)
    ids = model.encode(PROMPT)
    for s in result.steps:
        logits = eager_step(eager, ids)
        probs = torch.softmax(logits, -1).numpy()
        want = int(logits.argmax())
        assert s.chosen_id == want, f"step {s.step}: chose {s.chosen_id}, greedy eager decoding gives {want}"
        assert [c.token_id for c in s.candidates] == np.argsort(-probs, kind="stable")[:4].tolist()
        for c in s.candidates:
            assert abs(c.prob - probs[c.token_id]) <= PROB_TOL, f"step {s.step}: prob drift {c.prob - probs[c.token_id]:.2e}"
            assert abs(c.logit - logits[c.token_id]) <= LOGIT_TOL, f"step {s.step}: logit drift"
        entropy = float(-(probs * np.log(probs)).sum())
        assert abs(s.entropy - entropy) <= PROB_TOL * 10, f"step {s.step}: entropy {s.entropy} vs numpy {entropy}"
        assert s.flag == confidence_flag(float(probs.max()))
        assert s.prefix == model.tokenizer.decode(ids)
        ids.append(want)
    assert result.generated == model.tokenizer.decode(ids[len(model.encode(PROMPT)):])


def test_sampling_is_seeded_and_follows_the_tempered_distribution(tiny_pair):
    model, eager = tiny_pair
    a = logit_trace(model, PROMPT, steps=5, temperature=0.8, seed=7)
    b = logit_trace(model, PROMPT, steps=5, temperature=0.8, seed=7)
    assert [s.chosen_id for s in a.steps] == [s.chosen_id for s in b.steps], "same seed, different samples"
    gen, ids = torch.Generator().manual_seed(7), model.encode(PROMPT)
    for s in a.steps:  # independent replay: the same generator draws from softmax(logits / T)
        probs = torch.softmax(eager_step(eager, ids).float() / 0.8, -1)
        want = int(torch.multinomial(probs, 1, generator=gen))
        assert s.chosen_id == want, f"step {s.step}: sampled {s.chosen_id}, replay gives {want}"
        ids.append(want)
    c = logit_trace(model, PROMPT, steps=5, temperature=5.0, seed=8)
    assert [s.chosen_id for s in c.steps] != [s.chosen_id for s in a.steps], "seed and temperature are ignored"


def test_flags_follow_the_documented_thresholds():
    assert confidence_flag(CONFIDENT + 1e-6) == "confident" and confidence_flag(CONFIDENT) == "uncertain"
    assert confidence_flag(NO_IDEA - 1e-6) == "no idea" and confidence_flag(NO_IDEA) == "uncertain"


@pytest.mark.parametrize("kwargs, words", [
    ({"steps": 0}, "steps"), ({"temperature": -0.5}, "temperature"), ({"top_k": 0}, "top_k"),
    ({"steps": 200}, "context"), ({"steps": 2.5}, "steps"), ({"top_k": True}, "top_k"),
])
def test_bad_settings_are_user_errors(tiny_pair, kwargs, words):
    """The library names its parameters (the CLI shows them as flags: --steps, --top-k)."""
    with pytest.raises(LmxrayError, match=words) as err:
        logit_trace(tiny_pair[0], PROMPT, **kwargs)
    assert not str(err.value).startswith("--"), "library messages name parameters, not flags"


def test_cli_logits_table_json_and_file(capsys, tiny_dir, tmp_path):
    out = tmp_path / "steps.json"
    code, stdout, _ = run(capsys, "logits", PROMPT, "--model", tiny_dir, "--steps", 3, "--top-k", 2, "--out", out)
    assert code == 0
    for text in ("step 0: prefix", "step 2", "entropy", "generated:", "logit"):
        assert text in stdout, f"{text!r} missing from the logits output"
    saved = json.loads(out.read_text())
    code, stdout, _ = run(capsys, "logits", PROMPT, "--model", tiny_dir, "--steps", 3, "--top-k", 2, "--json")
    printed = json.loads(stdout)
    assert printed == saved and len(printed["steps"]) == 3 and len(printed["steps"][0]["candidates"]) == 2


@pytest.mark.parametrize("args, words", [
    (["--steps", 0], ["--steps"]), (["--temperature", -1], ["--temperature"]), (["--top-k", 0], ["--top-k"]),
])
def test_cli_logits_bad_input(capsys, tiny_dir, tmp_path, args, words):
    out = tmp_path / "x.json"
    code, _, err = run(capsys, "logits", PROMPT, "--model", tiny_dir, "--out", out, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert all(w in lines[0] for w in words) and "Traceback" not in err
    assert not list(tmp_path.iterdir()), "a file was written despite the error"


def test_cli_lens_from_prompt_and_file(capsys, tiny_dir, tmp_path):
    trace_file = tmp_path / "t.jsonl"
    assert run(capsys, "trace", PROMPT, "--model", tiny_dir, "--out", trace_file)[0] == 0
    code, stdout, _ = run(capsys, "lens", PROMPT, "--model", tiny_dir, "--json")
    live = json.loads(stdout)
    code2, stdout2, _ = run(capsys, "lens", trace_file, "--json")
    saved = json.loads(stdout2)
    assert code == code2 == 0
    assert [r["target_rank"] for r in live["rows"]] == [r["target_rank"] for r in saved["rows"]]
    assert live["rows"][-1]["target_rank"] == 1 and live["first_top1"] is not None
    code, stdout, _ = run(capsys, "lens", PROMPT, "--model", tiny_dir)
    assert code == 0 and "final prediction" in stdout and "first top-1 at layer" in stdout
    code, _, err = run(capsys, "lens", PROMPT, "--model", tiny_dir, "--position", 99)
    assert code == 2 and "out of range" in err and len(err.strip().splitlines()) == 1


def test_cli_lens_missing_trace_file_is_an_error(capsys, tiny_dir, tmp_path):
    """A source that looks like a trace file but does not exist is not traced as a prompt."""
    assert_user_error(capsys, ["lens", tmp_path / "missing.jsonl", "--model", tiny_dir], "no such file")


@pytest.mark.builtin
def test_builtin_greedy_trace_equals_hf_generate():
    """An independent decoding path: transformers' greedy generate (with its KV cache) picks the same tokens."""
    import lmxray

    model = lmxray.load("smollm2")
    prompt = "Once upon a time"
    result = logit_trace(model, prompt, steps=4, top_k=3)
    ids = torch.tensor([model.encode(prompt)])
    with torch.no_grad():
        gen = model.hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False,
                                output_scores=True, return_dict_in_generate=True, pad_token_id=0)
    new = gen.sequences[0, ids.shape[1]:].tolist()
    assert [s.chosen_id for s in result.steps] == new, f"logit trace {[s.chosen_id for s in result.steps]} vs generate {new}"
    for s, scores in zip(result.steps, gen.scores):
        probs = torch.softmax(scores[0].float(), -1)
        drift = max(abs(c.prob - float(probs[c.token_id])) for c in s.candidates)
        assert drift <= PROB_TOL * 10, f"step {s.step}: probabilities drift {drift:.2e} from generate's (KV cache)"
    assert result.steps[0].candidates[0].text == "," and result.steps[0].flag == "confident"
