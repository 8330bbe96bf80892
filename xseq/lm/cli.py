"""`xseq lm`: language models from recipes.

  xseq lm params RECIPE                     parameter count (meta device: nothing is allocated)
  xseq lm prepare RECIPE                    tokenise the recipe's corpus into memory-mapped token files
  xseq lm train RECIPE [--set k=v ...]      train (Lightning; --resume last|PATH continues a run)
  xseq lm generate CKPT --prompt TEXT       sample with the step API (greedy, temperature, top-k)
  xseq lm eval CKPT [--contexts 64,256]     perplexity on held-out text at several context lengths
"""
from __future__ import annotations

import argparse
import json

import torch

from ..common.cli import dispatch
from .config import LMRecipe


def _recipe(args) -> LMRecipe:
    recipe = LMRecipe.from_yaml(args.recipe)
    return recipe.override(args.set) if getattr(args, "set", None) else recipe


def cmd_params(args) -> None:
    from .model import count_parameters
    recipe = _recipe(args)
    if recipe.model.vocab_size is None:
        from .data import prepare
        recipe = recipe.override([f"model.vocab_size={prepare(recipe.data, args.data_dir).vocab_size}"])
    n = count_parameters(recipe.model)
    enc = recipe.model.encoder
    layout = "".join(enc.block_types)
    ratio = f"[{layout.count('m')}:{layout.count('s')}]"
    print(f"{recipe.name}: xLSTM{ratio}, d_model {enc.d_model}, {enc.n_blocks} blocks"
          f"{', sLSTM at ' + str([i for i, c in enumerate(layout) if c == 's']) if 's' in layout else ''}, "
          f"vocab {recipe.model.vocab_size} padded to {recipe.model.padded_vocab_size}")
    print(f"parameters: {n:,} = {n / 1e6:.1f}M")


def cmd_prepare(args) -> None:
    from .data import prepare
    corpus = prepare(_recipe(args).data, args.data_dir)
    print(json.dumps({"directory": str(corpus.directory), **corpus.meta}, indent=1))


def cmd_train(args) -> None:
    from .training import train
    train(_recipe(args), data_dir=args.data_dir, resume=args.resume, progress=not args.no_progress)


def cmd_generate(args) -> None:
    from .data import prepare
    from .generate import generate
    from .training import load_model
    model, recipe = load_model(args.checkpoint)
    tok = prepare(recipe.data, args.data_dir, verbose=False).tokenizer
    ids = tok.encode(args.prompt)
    if not ids:
        raise SystemExit("--prompt must not be empty")
    g = torch.Generator().manual_seed(args.seed)
    out = generate(model, torch.tensor([ids]), args.max_new_tokens, greedy=args.greedy,
                   temperature=args.temperature, top_k=args.top_k, generator=g)
    print(tok.decode(out[0].tolist()))


def cmd_eval(args) -> None:
    import numpy as np

    from .data import prepare
    from .evaluate import perplexity
    from .training import load_model
    model, recipe = load_model(args.checkpoint)
    if args.file:
        tok = prepare(recipe.data, args.data_dir, verbose=False).tokenizer
        with open(args.file, encoding="utf-8") as f:
            tokens = np.asarray(tok.encode(f.read()), dtype=np.int64)
        source = args.file
    else:
        tokens = prepare(recipe.data, args.data_dir, verbose=False).tokens("val")
        source = "the recipe's held-out split"
    contexts = [int(c) for c in args.contexts.split(",")] if args.contexts else [recipe.train.context_length]
    print(f"perplexity on {source} ({len(tokens):,} tokens); trained at context {recipe.train.context_length}")
    print(f"{'context':>8} {'windows':>8} {'loss':>8} {'ppl':>9}")
    for c in contexts:
        r = perplexity(model, tokens, c, batch_size=args.batch_size, max_windows=args.max_windows,
                       progress=not args.no_progress)
        print(f"{r['context']:>8} {r['windows']:>8} {r['loss']:>8.4f} {r['ppl']:>9.3f}", flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="xseq lm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def recipe_cmd(name, fn, help):
        s = sub.add_parser(name, help=help)
        s.add_argument("recipe", help="a recipe YAML (recipes/lm/*.yaml)")
        s.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a recipe field, e.g. --set train.max_steps=20 (repeatable)")
        s.add_argument("--data-dir", default=None, help="folder holding the recipe's data.path (or XSEQ_DATA_DIR)")
        s.set_defaults(fn=fn)
        return s

    recipe_cmd("params", cmd_params, "count parameters without allocating them")
    recipe_cmd("prepare", cmd_prepare, "tokenise the corpus once")
    t = recipe_cmd("train", cmd_train, "train from a recipe")
    t.add_argument("--resume", default=None, metavar="last|PATH", help="continue from a checkpoint")
    t.add_argument("--no-progress", action="store_true")

    g = sub.add_parser("generate", help="generate text from a checkpoint")
    g.add_argument("checkpoint")
    g.add_argument("--prompt", required=True)
    g.add_argument("--max-new-tokens", type=int, default=200)
    g.add_argument("--greedy", action="store_true")
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--top-k", type=int, default=None)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--data-dir", default=None)
    g.set_defaults(fn=cmd_generate)

    e = sub.add_parser("eval", help="perplexity at several context lengths")
    e.add_argument("checkpoint")
    e.add_argument("--file", default=None, help="a held-out text file (default: the recipe's validation split)")
    e.add_argument("--contexts", default=None, help="comma-separated context lengths (default: the training one)")
    e.add_argument("--batch-size", type=int, default=8)
    e.add_argument("--max-windows", type=int, default=None)
    e.add_argument("--no-progress", action="store_true")
    e.add_argument("--data-dir", default=None)
    e.set_defaults(fn=cmd_eval)

    dispatch(p, argv)
