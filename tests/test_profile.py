"""Profiles on a tiny model: statistics against plain forward hooks, aggregates, truncation, corpora, errors."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from lmxray.analysis.profile_stats import most_sensitive_layers
from lmxray.cli import main
from lmxray.experiments.datasets import SHIPPED_CORPORA, read_corpus
from cli_helpers import assert_user_error, run
from tiny_models import tiny_model, tiny_tokenizer

STAT_TOL = 1e-5  # relative drift of batched, padded profile statistics vs one unpadded forward with plain hooks
AGG_TOL = 1e-12  # aggregates vs numpy over the per-sample table (same float64 numbers)
TEXTS = ["int main() { return 0; }", "def f(x):\n    return x + 1", "a b c", "The quick brown fox jumps over it."]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpora")
    (root / "code.txt").write_text("\n\n".join(TEXTS[:2]) + "\n")
    (root / "prose.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS[2:]))
    folder = root / "files"
    folder.mkdir()
    (folder / "one.md").write_text("x" * 90)  # longer than --max-tokens: truncated
    (folder / "two.txt").write_text("short")
    (folder / ".hidden").write_text("not a sample")
    return root


@pytest.fixture(scope="module")
def profiled(tiny_dir, corpora, tmp_path_factory):
    folder = tmp_path_factory.mktemp("profile-run") / "run"
    code = main(["profile", "--corpus", f"code={corpora / 'code.txt'}", "--corpus", f"prose={corpora / 'prose.jsonl'}",
                 "--corpus", f"files={corpora / 'files'}", "--model", str(tiny_dir), "--out", str(folder),
                 "--max-tokens", "40", "--batch-size", "3"])
    assert code == 0
    return folder


def hooked_stats(text: str, max_tokens: int) -> dict[str, np.ndarray]:
    """The seed's method: plain forward hooks on every layer of an untraced model, one unpadded sample."""
    model = tiny_model("llama", attn_implementation="sdpa")
    ids = tiny_tokenizer()(text)["input_ids"][:max_tokens]  # the tokenizer saved with the model (no BOS)
    inputs, outputs = [], []
    handles = [layer.register_forward_hook(lambda m, a, o: outputs.append(o[0] if isinstance(o, tuple) else o))
               for layer in model.model.layers]
    handles.append(model.model.layers[0].register_forward_pre_hook(
        lambda m, a, k: inputs.append((a[0] if a else k["hidden_states"]).clone()), with_kwargs=True))
    with torch.no_grad():
        model(torch.tensor([ids]), use_cache=False)
    for h in handles:
        h.remove()
    states = [inputs[0][0].double()] + [o[0].double() for o in outputs]  # [pos, d] entering each layer, then leaving
    stats = {"mean": [], "abs_mean": [], "rel_size": []}
    for h_in, h_out in zip(states[:-1], states[1:]):
        delta = h_out - h_in
        stats["mean"].append(float(delta.mean()))
        stats["abs_mean"].append(float(delta.abs().mean()))
        norm_in = h_in.norm(dim=-1)  # a zero input (the pad token's embedding, for '\n') counts as 0
        ratio = torch.where(norm_in > 0, delta.norm(dim=-1) / norm_in.clamp(min=1e-300), torch.zeros_like(norm_in))
        stats["rel_size"].append(float(ratio.mean()))
    return {k: np.array(v) for k, v in stats.items()}


def test_sample_statistics_match_plain_hooks(profiled):
    samples = pq.read_table(profiled / "samples.parquet").to_pydict()
    texts = {("code", 0): TEXTS[0], ("code", 1): TEXTS[1], ("prose", 0): TEXTS[2], ("prose", 1): TEXTS[3],
             ("files", 0): "x" * 90, ("files", 1): "short"}
    for (corpus, index), text in texts.items():
        rows = [i for i in range(len(samples["layer"])) if (samples["corpus"][i], samples["sample"][i]) == (corpus, index)]
        assert [samples["layer"][i] for i in rows] == [0, 1, 2]
        ref = hooked_stats(text, 40)
        for name, expected in ref.items():
            got = np.array([samples[name][i] for i in rows])
            drift = float(np.abs(got - expected).max() / max(np.abs(expected).max(), 1e-12))
            assert drift <= STAT_TOL, f"{corpus}:{index} {name}: relative drift {drift:.3e} from plain hooks"


def test_aggregates_ranking_and_truncation(profiled):
    samples = pq.read_table(profiled / "samples.parquet").to_pydict()
    profile = pq.read_table(profiled / "profile.parquet").to_pydict()
    ranking = pq.read_table(profiled / "ranking.parquet").to_pydict()
    for corpus in ("code", "prose", "files"):
        for layer in range(3):
            values = {name: np.array([v for c, lay, v in zip(samples["corpus"], samples["layer"], samples[name])
                                      if c == corpus and lay == layer]) for name in ("mean", "abs_mean", "rel_size")}
            row = next(i for i in range(len(profile["layer"]))
                       if profile["corpus"][i] == corpus and profile["layer"][i] == layer)
            assert profile["n_samples"][row] == 2
            for name, v in values.items():
                for stat, ref in (("mean", v.mean()), ("std", v.std()), ("var", v.var())):
                    got = profile[f"{name}_{stat}"][row]
                    assert abs(got - ref) <= AGG_TOL, f"{corpus} L{layer} {name}_{stat}: {got} vs numpy {ref}"
        var = [profile["abs_mean_var"][i] for i in range(len(profile["layer"])) if profile["corpus"][i] == corpus]
        ranked = [lay for c, lay in zip(ranking["corpus"], ranking["layer"]) if c == corpus]
        assert ranked == most_sensitive_layers(np.array(var), 5) == list(np.argsort(var)[::-1])
    summary = json.loads((profiled / "summary.json").read_text())
    by_corpus = {c["corpus"]: c for c in summary["corpora"]}
    assert by_corpus["files"]["truncated"] == 1 and by_corpus["code"]["truncated"] == 0
    long_rows = [i for i in range(len(samples["layer"])) if samples["corpus"][i] == "files" and samples["sample"][i] == 0]
    assert all(samples["n_tokens"][i] == 40 and samples["n_tokens_original"][i] == 90 and samples["truncated"][i]
               for i in long_rows)
    for name in ("profile.csv", "samples.csv", "ranking.csv", "profile_abs_mean.png", "profile_variance.png"):
        assert (profiled / name).is_file(), f"{name} was not written"


def test_profile_cli_output_summary_and_resume(capsys, tiny_dir, corpora, tmp_path):
    folder = tmp_path / "run"
    args = ["profile", "--corpus", f"code={corpora / 'code.txt'}", "--model", tiny_dir, "--out", folder, "--max-tokens", 60]
    code, stdout, err = run(capsys, *args, "--limit", 1)
    assert code == 0 and "1 samples computed, 0 resumed" in err
    code, stdout, err = run(capsys, *args)
    assert code == 0 and "1 samples computed, 1 resumed" in err, err
    for text in ("profile of", "code", "most input-sensitive layers", "L"):
        assert text in stdout
    code, stdout, _ = run(capsys, "profile", "--summary", folder, "--json")
    data = json.loads(stdout)
    assert code == 0 and data["corpora"][0]["samples"] == 2 and data["layers"] == 3


def test_bad_corpora_are_one_line_errors(capsys, tiny_dir, corpora, tmp_path):
    out = tmp_path / "run"
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n   \n")
    bad_jsonl = tmp_path / "bad.jsonl"
    bad_jsonl.write_text('{"text": "ok"}\n{"body": "no text"}\n')
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"caf\xe9\n")
    cases = [
        ([f"b={blank}"], ["corpus 'b'", "is empty"]),
        ([f"j={bad_jsonl}"], ["bad.jsonl:2", "'text'"]),
        ([f"e={empty_dir}"], ["corpus 'e'", "is empty"]),
        ([f"l={latin}"], ["latin.txt", "not UTF-8"]),
        ([f"m={tmp_path / 'missing.txt'}"], ["does not exist"]),
        ([f"c={corpora / 'files' / 'one.md'}"], ["unsupported file type"]),
        ([f"a={blank}", f"a={bad_jsonl}"], ["corpus names repeat"]),
        (["=x.txt"], ["NAME=PATH"]),
    ]
    for specs, words in cases:
        args = ["profile", *sum((["--corpus", s] for s in specs), []), "--model", tiny_dir, "--out", out]
        assert_user_error(capsys, args, *words)
        assert not out.exists(), f"{specs}: a refused profile created its run folder"
    assert_user_error(capsys, ["profile", "--corpus", f"c={corpora / 'code.txt'}", "--model", tiny_dir, "--out", out,
                               "--max-tokens", 500], "exceeds the model's context of 64")
    assert_user_error(capsys, ["profile", "--summary", tmp_path], "no profile summary")


def test_shipped_corpora_have_forty_samples_each():
    assert set(SHIPPED_CORPORA) == {"cpp", "python", "finance-news", "mathematics"}
    for name, path in SHIPPED_CORPORA.items():
        samples = read_corpus(name, path)
        assert len(samples) >= 40, f"{name}: {len(samples)} samples"
        assert len({s.text for s in samples}) == len(samples), f"{name} repeats a sample"


@pytest.mark.builtin
def test_shipped_profile_on_the_builtin_model(capsys, tmp_path):
    folder = tmp_path / "run"
    code, stdout, _ = run(capsys, "profile", "--out", folder, "--limit", 2, "--max-tokens", 48, "--json")
    assert code == 0
    data = json.loads(stdout)
    assert (data["model"], data["layers"], data["max_tokens"]) == ("smollm2", 30, 48)
    assert [c["corpus"] for c in data["corpora"]] == list(SHIPPED_CORPORA)
    assert all(c["samples"] == 2 and len(c["most_sensitive_layers"]) == 5 for c in data["corpora"])
    assert pq.read_table(folder / "profile.parquet").num_rows == 4 * 30
