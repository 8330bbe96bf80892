import random

import pytest
import yaml


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A small learnable text: sentences from a tiny grammar, 60k characters."""
    rng = random.Random(0)
    subjects, verbs, objects = ["the cat", "a dog", "my friend", "the king"], ["sees", "likes", "finds"], \
        ["the ball.", "a crown.", "the sea.", "bread."]
    text = "\n".join(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}" for _ in range(3000))
    path = tmp_path_factory.mktemp("corpus") / "grammar.txt"
    path.write_text(text)
    return path


def tiny_recipe(tmp_path, corpus, **train):
    """A 2-block xLSTM[1:1] on the grammar corpus; deterministic CPU float32."""
    t = {"context_length": 16, "batch_size": 8, "max_steps": 20, "lr": 3e-3, "warmup_steps": 5,
         "precision": "32-true", "accelerator": "cpu", "devices": 1, "val_interval": 10, "val_batches": 4,
         "seed": 3, "deterministic": True, "out_dir": str(tmp_path / "run")}
    t.update(train)
    d = {"model": {"vocab_size": None, "encoder": {"d_model": 32, "layout": "ms", "mlstm": {"num_heads": 2},
                                                  "slstm": {"num_heads": 2}}},
         "data": {"path": str(corpus), "tokenizer": "char", "cache_dir": str(tmp_path / "cache")},
         "train": t}
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(d))
    return path
