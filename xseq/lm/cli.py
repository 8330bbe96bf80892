"""`xseq lm`: language models from recipes.

  xseq lm params RECIPE                     parameter count (meta device: nothing is allocated)
  xseq lm prepare RECIPE                    tokenise the recipe's corpus into memory-mapped token files
  xseq lm train RECIPE [--set k=v ...]      train (Lightning; --resume last|PATH continues a run)
  xseq lm generate CKPT --prompt TEXT       sample with the step API (greedy, temperature, top-k)
  xseq lm eval CKPT [--contexts 64,256]     perplexity on held-out text at several context lengths

A checkpoint holds the model, its recipe and its tokenizer: generate, and eval with --file, need nothing
else (eval without --file scores the training text's held-out split, so it needs that text: --data-dir).
Checkpoints are read weights-only: a file holding pickled objects that could run code is refused.
--resume continues a run up to train.max_steps optimizer steps IN ALL: `--resume last --set
train.max_steps=4000` trains a finished 2,000-step run 2,000 steps further; a run already there trains nothing.
"""
from __future__ import annotations

import argparse
import json
from contextlib import contextmanager
from pathlib import Path

from ..common import cli as common_cli
from ..common.cli import CLIError, OneLineParser, add_common_flags, dispatch, fail


def _recipe(args):
    from .config import LMRecipe  # torch loads when a command runs, not for --help

    recipe = LMRecipe.from_yaml(args.recipe)
    if not getattr(args, "set", None):
        return recipe
    try:
        return recipe.override(args.set)
    except ValueError as e:
        raise CLIError(f"--set: {e}") from None


def _contexts(text: str) -> list[int]:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [common_cli.positive_int(p) for p in parts]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers >= 1 (e.g. 64,256,1024), got {text!r}")\
            from None
    return values


def _data_dir(text: str) -> Path:
    p = common_cli.existing_path(text)
    if not p.is_dir():
        raise argparse.ArgumentTypeError(f"not a folder: {text}")
    return p


@contextmanager
def _data_hint():
    """A recipe's text that is not found: data_path's message, plus the CLI's way to name its folder."""
    try:
        yield
    except FileNotFoundError as e:
        raise CLIError(f"{e} (or pass that folder as --data-dir DIR)") from None


def cmd_params(args) -> None:
    from .model import count_parameters
    recipe = _recipe(args)
    if recipe.model.vocab_size is None:
        from .data import prepare
        with _data_hint():
            vocab = prepare(recipe.data, args.data_dir, verbose=False).vocab_size
        recipe = recipe.override([f"model.vocab_size={vocab}"])
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
    with _data_hint():
        corpus = prepare(_recipe(args).data, args.data_dir, verbose=not args.quiet)
    print(json.dumps({"directory": str(corpus.directory), **corpus.meta}, indent=1))


def cmd_train(args) -> None:
    from .training import resume_path, summary_line, train
    recipe = _recipe(args)
    if args.resume is not None:
        try:
            resume_path(recipe, args.resume)
        except ValueError as e:
            fail("--resume", str(e).removeprefix("resume: "))
    with _data_hint():
        summary = train(recipe, data_dir=args.data_dir, resume=args.resume,
                        progress=not (args.no_progress or args.quiet), verbose=not args.quiet,
                        framework_messages=args.verbose)
    if args.quiet and summary.get("global_zero", True):  # the one line is the result; rank 0 reports it
        print(summary_line(summary), flush=True)


def _load(args):
    """The model, recipe and tokenizer of the checkpoint: all from the file (an older checkpoint without its
    tokenizer takes it from the training text under --data-dir)."""
    from .checkpoint import model_of, read_checkpoint, tokenizer_of
    ck = read_checkpoint(args.checkpoint)
    model, recipe = model_of(ck, args.checkpoint)
    try:
        tok = tokenizer_of(ck, args.checkpoint)
    except ValueError:
        if args.data_dir is None:
            raise
        from .data import prepare
        tok = prepare(recipe.data, args.data_dir, verbose=False).tokenizer
    return model, recipe, tok


def _encode(tok, text: str, flag: str) -> list[int]:
    try:
        return tok.encode(text)
    except ValueError as e:
        raise CLIError(f"{flag}: {e}") from None


def cmd_generate(args) -> None:
    import torch

    from .generate import generate
    if not args.prompt:
        fail("--prompt", "must not be empty (the model continues it)")
    if args.greedy and (args.temperature is not None or args.top_k is not None):
        fail("--greedy", "takes no --temperature or --top-k (it always picks the most likely token)")
    model, _, tok = _load(args)
    ids = _encode(tok, args.prompt, "--prompt")
    if not ids:
        fail("--prompt", "holds no tokens")
    if args.top_k is not None and args.top_k > model.vocab_size:
        fail("--top-k", f"must be at most the vocabulary size {model.vocab_size}, got {args.top_k}")
    g = torch.Generator().manual_seed(args.seed)
    out = generate(model, torch.tensor([ids]), args.max_new_tokens, greedy=args.greedy,
                   temperature=1.0 if args.temperature is None else args.temperature, top_k=args.top_k,
                   generator=g, progress=not (args.quiet or args.no_progress))
    print(tok.decode(out[0].tolist()))


def cmd_eval(args) -> None:
    import numpy as np

    from .evaluate import perplexity
    model, recipe, tok = _load(args)
    if args.file:
        with open(args.file, encoding="utf-8") as f:
            tokens = np.asarray(_encode(tok, f.read(), "--file"), dtype=np.int64)
        source = str(args.file)
    else:
        tokens = _held_out(recipe, tok, args)
        source = "the recipe's held-out split"
    contexts = args.contexts or [recipe.train.context_length]
    for c in contexts:
        if len(tokens) - 1 < c:
            fail("--contexts", f"{c} is longer than the {len(tokens):,} tokens of {source} allow (context + 1 "
                               f"tokens per window)")
    if not args.quiet:
        print(f"perplexity on {source} ({len(tokens):,} tokens); trained at context {recipe.train.context_length}")
    print(f"{'context':>8} {'windows':>8} {'loss':>8} {'ppl':>9}")
    for c in contexts:
        r = perplexity(model, tokens, c, batch_size=args.batch_size, max_windows=args.max_windows,
                       progress=not (args.no_progress or args.quiet))
        print(f"{r['context']:>8} {r['windows']:>8} {r['loss']:>8.4f} {r['ppl']:>9.3f}", flush=True)


def _held_out(recipe, tok, args):
    """The validation split of the training text (tokenised once into the cache), which must be the text the
    checkpoint's tokenizer came from."""
    from .data import prepare
    try:
        corpus = prepare(recipe.data, args.data_dir, verbose=not args.quiet)
    except FileNotFoundError:
        raise CLIError(f"the held-out split needs the checkpoint's training text {recipe.data.path!r}, which is not "
                       f"found: pass --data-dir with the folder that holds it (or set XSEQ_DATA_DIR), or score "
                       f"another text with --file") from None
    if corpus.tokenizer.state() != tok.state():
        raise CLIError(f"the text found for {recipe.data.path!r} ({corpus.meta['source']}) is not the one this "
                       f"checkpoint was trained on (its tokenizer differs): pass --data-dir with the right folder, "
                       f"or score a text with --file")
    return corpus.tokens("val")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="xseq lm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def data_dir_flag(s, what):
        s.add_argument("--data-dir", type=_data_dir, default=None, metavar="DIR",
                       help=f"folder holding {what} (a relative data.path is looked up there, then under "
                            f"$XSEQ_DATA_DIR)")

    def recipe_cmd(name, fn, help):
        s = sub.add_parser(name, help=help, description=help)
        s.add_argument("recipe", type=common_cli.existing_file, help="a recipe YAML (recipes/lm/*.yaml)")
        s.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a recipe field, e.g. --set train.max_steps=20 (repeatable)")
        data_dir_flag(s, "the recipe's data.path")
        add_common_flags(s)
        s.set_defaults(fn=fn)
        return s

    recipe_cmd("params", cmd_params, "count parameters without allocating them")
    recipe_cmd("prepare", cmd_prepare, "tokenise the corpus once into the cache")
    t = recipe_cmd("train", cmd_train, "train from a recipe (or continue a run with --resume)")
    t.add_argument("--resume", default=None, metavar="last|PATH",
                   help="continue from a checkpoint (last: the run's checkpoints/last.ckpt) up to train.max_steps "
                        "optimizer steps in all; raise it with --set train.max_steps=N to train a finished run further")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (--quiet implies it)")

    def checkpoint_cmd(name, fn, help):
        s = sub.add_parser(name, help=help, description=help)
        s.add_argument("checkpoint", type=common_cli.existing_file,
                       help="a training checkpoint (runs/lm/<recipe>/checkpoints/last.ckpt); it holds the model, its "
                            "recipe and its tokenizer")
        return s

    g = checkpoint_cmd("generate", cmd_generate, "continue a prompt with text sampled from a checkpoint")
    g.add_argument("--prompt", required=True, metavar="TEXT", help="the text to continue (required)")
    g.add_argument("--max-new-tokens", type=common_cli.nonneg_int, default=200, metavar="N",
                   help="tokens to generate after the prompt (default 200)")
    g.add_argument("--greedy", action="store_true", help="always take the most likely token (no sampling)")
    g.add_argument("--temperature", type=common_cli.positive_float, default=None, metavar="T",
                   help="divide the logits by T before sampling: < 1 more conservative, > 1 more varied (default 1)")
    g.add_argument("--top-k", type=common_cli.positive_int, default=None, metavar="K",
                   help="sample only among the K most likely tokens (default: all)")
    g.add_argument("--seed", type=common_cli.nonneg_int, default=0, metavar="S", help="sampling seed (default 0)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar (--quiet implies it)")
    data_dir_flag(g, "the training text (needed only for a checkpoint older than its stored tokenizer)")
    add_common_flags(g)
    g.set_defaults(fn=cmd_generate)

    e = checkpoint_cmd("eval", cmd_eval, "perplexity at several context lengths")
    e.add_argument("--file", type=common_cli.existing_file, default=None, metavar="TEXT",
                   help="a text file to score (default: the recipe's held-out split, which needs the training text)")
    e.add_argument("--contexts", type=_contexts, default=None, metavar="C1,C2,...",
                   help="comma-separated context lengths (default: the training one)")
    e.add_argument("--batch-size", type=common_cli.positive_int, default=8, metavar="B",
                   help="windows per forward pass (default 8)")
    e.add_argument("--max-windows", type=common_cli.positive_int, default=None, metavar="N",
                   help="score at most N windows per context length (default: all)")
    e.add_argument("--no-progress", action="store_true", help="no progress bar (--quiet implies it)")
    data_dir_flag(e, "the training text, for its held-out split (without --file)")
    add_common_flags(e)
    e.set_defaults(fn=cmd_eval)
    return p


def main(argv=None) -> None:
    dispatch(build_parser(), argv)
