"""A tiny character-level transformer, trained on a text bundled with the repo.

Token and position embeddings, pre-LayerNorm blocks of causal multi-head
self-attention (written here with gradkit ops: matmul, a where() mask with a
large negative number, softmax) and a GELU MLP, then a linear head over the
characters. Trained with AdamW on examples/data/tiny_text.txt (5 KB, written
for this example); samples text at the end.

    python examples/char_transformer.py                 # cpu, ~30 s: loss 3.5 -> ~0.6
    python examples/char_transformer.py --device cuda   # on a GPU

Writes char_transformer_loss.png (matplotlib) to examples/out/ (``--out-dir``).
"""
import os
# Before NumPy loads: these models multiply small matrices, where BLAS threads cost
# more than they give, and on a busy 2-core machine OpenBLAS's spinning threads make
# a step several times slower. Set the variables yourself to override.
for _v in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import math
import random
import time

import gradkit as gk
import gradkit.nn as nn
import gradkit.nn.functional as F
import gradkit.optim as optim

from _common import Progress, add_common_args, parse, save_loss_curve, sync
from gradkit.argtypes import nonnegative_int, positive_int

HERE = os.path.dirname(os.path.abspath(__file__))
TEXT = os.path.join(HERE, "data", "tiny_text.txt")


class CausalSelfAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        assert dim % heads == 0, "dim must be a multiple of heads"
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, d = x.shape
        h, hd = self.heads, d // self.heads
        qkv = self.qkv(x)                                    # (b, t, 3d)

        def heads(z):                                        # (b, t, d) -> (b, h, t, hd)
            return z.reshape(b, t, h, hd).transpose(1, 2)

        q, k, v = heads(qkv[..., :d]), heads(qkv[..., d:2 * d]), heads(qkv[..., 2 * d:])
        att = (q * (1.0 / math.sqrt(hd))) @ k.transpose(-2, -1)   # (b, h, t, t)
        i = gk.arange(t, device=x.device)
        causal = i.unsqueeze(1) >= i.unsqueeze(0)            # row may look at cols <= row
        att = gk.where(causal, att, -1e9)
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)       # heads side by side again
        return self.proj(y)


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"),
                                 nn.Linear(4 * dim, dim))        # GPT-2's GELU

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class CharTransformer(nn.Module):
    def __init__(self, vocab, context, dim=64, heads=4, layers=2):
        super().__init__()
        self.context = context
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(context, dim)
        self.blocks = nn.Sequential(*[Block(dim, heads) for _ in range(layers)])
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, idx):                                  # idx: (b, t) int64
        t = idx.shape[1]
        pos = gk.arange(t, device=idx.device)
        x = self.tok(idx) + self.pos(pos)
        return self.head(self.ln(self.blocks(x)))            # (b, t, vocab) logits


def batch(data, block, size, device):
    """``size`` random windows of ``block`` characters and the next-character targets."""
    starts = gk.randint(0, data.shape[0] - block - 1, (size, 1), device=device)
    offs = gk.arange(block, device=device).unsqueeze(0)
    return data[starts + offs], data[starts + offs + 1]


@gk.no_grad()
def mean_loss(model, data, block):
    """Mean next-character loss over all non-overlapping windows of ``data``."""
    model.eval()
    n = (data.shape[0] - 1) // block
    x = data[:n * block].reshape(n, block)
    y = data[1:n * block + 1].reshape(n, block)
    logits = model(x)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).item()
    model.train()
    return loss


@gk.no_grad()
def sample(model, stoi, itos, prompt, n, device, temperature=0.8, seed=0):
    model.eval()
    rng = random.Random(seed)
    ids = [stoi[c] for c in prompt]
    for _ in range(n):
        x = gk.tensor([ids[-model.context:]], dtype=gk.int64, device=device)
        logits = model(x)[0, -1] / temperature
        probs = F.softmax(logits, dim=-1).tolist()
        ids.append(rng.choices(range(len(probs)), weights=probs)[0])
    return "".join(itos[i] for i in ids)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap, steps=600, lr=3e-3)
    ap.add_argument("--context", type=positive_int, default=32, help="characters of context")
    ap.add_argument("--batch-size", type=positive_int, default=32)
    ap.add_argument("--dim", type=positive_int, default=64)
    ap.add_argument("--heads", type=positive_int, default=4, help="attention heads; must divide --dim")
    ap.add_argument("--layers", type=positive_int, default=2)
    ap.add_argument("--sample", type=nonnegative_int, default=300,
                    help="characters to sample at the end")
    ap.add_argument("--eval-every", type=positive_int, default=100,
                    help="validation loss every N steps")
    args = parse(ap, argv, check=lambda a: a.dim % a.heads and (
        f"--heads {a.heads} must divide --dim {a.dim} (each head gets dim/heads channels)"))

    gk.manual_seed(args.seed)
    dev = args.device
    with open(TEXT, encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    itos = dict(enumerate(chars))
    data = gk.tensor([stoi[c] for c in text], dtype=gk.int64, device=dev)
    cut = int(0.9 * len(text))
    train, val = data[:cut], data[cut:]
    print(f"text: {len(text)} characters, {len(chars)} distinct; train {cut}, "
          f"validation {len(text) - cut}")

    model = CharTransformer(len(chars), args.context, args.dim, args.heads, args.layers).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {args.layers} blocks, {args.heads} heads, dim {args.dim}, context "
          f"{args.context}: {n_params} parameters; AdamW lr {args.lr}, batch "
          f"{args.batch_size}, {args.steps} steps, on {dev}")
    opt = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warmup = max(1, args.steps // 20)

    losses, evals = [], ([], [])
    bar = Progress(args.steps, "train")
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        # linear warm-up, then cosine decay to 10% of the peak rate
        frac = (step - warmup) / max(1, args.steps - warmup)
        scale = step / warmup if step <= warmup else 0.1 + 0.45 * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g["lr"] = args.lr * scale
        x, y = batch(train, args.context, args.batch_size, dev)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, len(chars)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        bar.update(losses[-1])
        if step % args.eval_every == 0 and step < args.steps:
            evals[0].append(step)
            evals[1].append(mean_loss(model, val, args.context))
    sync(dev)
    seconds = time.perf_counter() - t0
    bar.close()

    k = min(20, len(losses))
    print(f"trained in {seconds:.1f} s ({1000 * seconds / args.steps:.1f} ms per step)")
    print(f"loss {sum(losses[:k]) / k:.3f} (first {k} steps) -> {sum(losses[-k:]) / k:.3f} "
          f"(last {k} steps); uniform guessing is ln({len(chars)}) = {math.log(len(chars)):.3f}")
    val_loss = mean_loss(model, val, args.context)
    evals[0].append(args.steps)
    evals[1].append(val_loss)
    print(f"train loss {mean_loss(model, train, args.context):.3f}, "
          f"validation loss {val_loss:.3f} (nats per character)")

    print("\nsample:\n" + "-" * 60)
    print(sample(model, stoi, itos, "The ", args.sample, dev, seed=args.seed))
    print("-" * 60)

    if not args.no_plot:
        save_loss_curve(losses, os.path.join(args.out_dir, "char_transformer_loss.png"),
                        "char transformer on tiny_text.txt",
                        extra=("validation loss", evals[0], evals[1]))
    return losses


if __name__ == "__main__":
    main()
