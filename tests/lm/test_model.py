import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from xseq.lm import XLSTMLM, LMConfig, LMRecipe, count_parameters, generate, greedy_by_forward, optimizer_groups
from xseq.lm.training import lr_factor
from xseq.nn import XLSTMConfig

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "lm"
TABLE7 = {  # paper Table 7, millions of parameters
    "xlstm_1_0_125m": 163.8, "xlstm_1_0_350m": 409.3, "xlstm_1_0_760m": 840.4, "xlstm_1_0_1.3b": 1422.6,
    "xlstm_7_1_125m": 163.7, "xlstm_7_1_350m": 408.4, "xlstm_7_1_760m": 839.7, "xlstm_7_1_1.3b": 1420.1,
}


@pytest.mark.parametrize("name", sorted(TABLE7))
def test_parameter_counts_match_table7(name):
    recipe = LMRecipe.from_yaml(RECIPES / f"{name}.yaml")
    assert recipe.model.padded_vocab_size == 50304
    assert round(count_parameters(recipe.model) / 1e6, 1) == TABLE7[name]


def test_recipes_follow_d2():
    for path in RECIPES.glob("xlstm_*.yaml"):
        r = LMRecipe.from_yaml(path)
        t = r.train
        assert (t.context_length, t.betas, t.eps, t.weight_decay, t.warmup_steps, t.min_lr_ratio, t.grad_clip) == \
            (2048, (0.9, 0.95), 1e-5, 0.1, 750, 0.1, 1.0)
        assert t.precision == "bf16-mixed" and r.model.encoder.mlstm.num_heads == 4
        if "7_1" in path.name:
            want = [3, 20] if "125m" in path.name else [3, 5, 7, 40, 42, 44]
            assert r.model.encoder.slstm_at == want


def test_params_cli_allocates_nothing():
    out = subprocess.run([sys.executable, "-m", "xseq.cli", "lm", "params", str(RECIPES / "xlstm_1_0_2.7b.yaml")],
                         capture_output=True, text=True, check=True)
    assert "2788.4M" in out.stdout  # Table 4 lists 2788.3
    with torch.device("meta"):
        model = XLSTMLM(LMRecipe.from_yaml(RECIPES / "xlstm_7_1_1.3b.yaml").model)
    assert all(p.device.type == "meta" for p in model.parameters())


def small_lm(layout="msm", vocab=50, seed=0):
    torch.manual_seed(seed)
    enc = XLSTMConfig(d_model=32, layout=layout, mlstm={"num_heads": 2}, slstm={"num_heads": 2})
    return XLSTMLM(LMConfig(vocab_size=vocab, encoder=enc)).eval()


def test_structure_of_the_paper():
    model = small_lm(vocab=65)
    assert model.embedding.weight.shape == (128, 32) and model.head.weight.shape == (128, 32)
    assert model.head.bias is None and model.head.weight is not model.embedding.weight  # untied
    for name, p in model.named_parameters():
        if name.endswith("bias"):  # biases only in gates and convs
            assert re.search(r"(igate|fgate|conv)\.bias$|layer\.bias$", name), name
    std = math.sqrt(2 / (5 * 32))
    assert abs(model.embedding.weight.std().item() - std) < 0.2 * std


def test_tied_head_shares_the_embedding():
    enc = XLSTMConfig(d_model=32, layout="ms", mlstm={"num_heads": 2}, slstm={"num_heads": 2})
    untied = XLSTMLM(LMConfig(vocab_size=50, encoder=enc))
    tied = XLSTMLM(LMConfig(vocab_size=50, encoder=enc, tie_weights=True))
    assert tied.head.weight is tied.embedding.weight
    assert tied.num_parameters() == untied.num_parameters() - 64 * 32  # the matrix counts once
    decay, no_decay = optimizer_groups(tied, 0.1)
    ids = [id(p) for g in (decay, no_decay) for p in g["params"]]
    assert ids.count(id(tied.embedding.weight)) == 1
    assert id(tied.embedding.weight) in {id(p) for p in no_decay["params"]}
    logits, _ = tied(torch.randint(0, 50, (2, 5)))
    logits[..., 7].sum().backward()  # the head's gradient reaches the embedding rows it scores
    assert tied.embedding.weight.grad[7].abs().sum() > 0
    loaded = XLSTMLM(LMConfig(vocab_size=50, encoder=enc, tie_weights=True))
    loaded.load_state_dict(tied.state_dict())
    assert loaded.head.weight is loaded.embedding.weight and torch.equal(loaded.head.weight, tied.head.weight)
    with pytest.raises(ValueError, match="tie_weights must be a bool"):
        LMConfig(vocab_size=50, encoder=enc, tie_weights="yes")


def test_optimizer_groups_exclude_embedding_biases_and_norms():
    model = small_lm()
    decay, no_decay = optimizer_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    ids = lambda group: {id(p) for p in group["params"]}
    assert ids(decay).isdisjoint(ids(no_decay))
    assert ids(decay) | ids(no_decay) == {id(p) for p in model.parameters()}
    names = {id(p): n for n, p in model.named_parameters()}
    nd = {names[i] for i in ids(no_decay)}
    assert "embedding.weight" in nd and "encoder.norm.weight" in nd
    assert "encoder.blocks.1.layer.bias" in nd and "encoder.blocks.0.layer.igate.bias" in nd
    assert "encoder.blocks.0.layer.norm.weight" in nd
    d = {names[i] for i in ids(decay)}
    assert {"head.weight", "encoder.blocks.0.layer.up.weight", "encoder.blocks.1.layer.R"} <= d


def test_schedule_warmup_then_cosine_to_ten_percent():
    f = [lr_factor(s, 750, 30_000, 0.1) for s in range(30_001)]
    assert f[0] == pytest.approx(1 / 750) and f[749] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(f[:749], f[1:750]))
    assert all(a >= b for a, b in zip(f[750:], f[751:]))
    assert f[30_000] == pytest.approx(0.1)
    assert f[750 + (30_000 - 750) // 2] == pytest.approx(0.55, abs=1e-4)


@pytest.mark.parametrize("layout", ["msm", "s", "m"])
def test_greedy_step_generation_equals_repeated_forward(layout):
    model = small_lm(layout, seed=1)
    prompt = torch.randint(0, 50, (3, 5), generator=torch.Generator().manual_seed(2))
    fast = generate(model, prompt, 40, greedy=True)
    slow = greedy_by_forward(model, prompt, 40)
    assert fast.shape == (3, 45) and torch.equal(fast, slow)


def test_sampling_respects_top_k_and_vocab():
    model = small_lm(vocab=50)
    prompt = torch.zeros(4, 3, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    out = generate(model, prompt, 30, temperature=1.5, generator=g)
    assert out.max() < 50  # the 14 padding ids are never drawn
    assert torch.equal(generate(model, prompt, 10, top_k=1, generator=g), generate(model, prompt, 10, greedy=True))
    # top-k: every sampled token is among the k most likely given its prefix
    out = generate(model, prompt, 12, top_k=3, generator=g)
    logits, _ = model(out[:, :-1])
    top3 = logits[:, 2:, :50].topk(3, dim=-1).indices
    assert (top3 == out[:, 3:, None]).any(-1).all()


def test_bad_input_is_reported():
    model = small_lm(vocab=50)
    with pytest.raises(ValueError, match="vocabulary is \\[0, 50\\)"):
        model(torch.tensor([[1, 50]]))
    with pytest.raises(ValueError, match="integer tensor"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="temperature"):
        generate(model, torch.zeros(1, 2, dtype=torch.long), 3, temperature=0.0)
    with pytest.raises(ValueError, match="unknown LMConfig field"):
        LMRecipe.from_dict({"model": {"vocab": 3}})
    with pytest.raises(ValueError, match="section.key=value"):
        LMRecipe().override(["max_steps=3"])
