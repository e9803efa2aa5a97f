"""
model.py -- a readable PyTorch twin of packlm's two model families, used to
check train_gpt (parity) and as the PyTorch peer in benchmarks.

It computes exactly what train_gpt computes, on the same packed micro-batch:

    inputs, targets, pos   (N,) int, N = B*T tokens laid end to end
    cu_seqlens             (S+1,) int, segment s = tokens [cu[s], cu[s+1])
    activations            (N, C); the fused qkv is (N, (NH + 2*NKV) * HD)

gpt2:  x = wte[in] + wpe[pos]; per layer  x += proj(attn(LN(x)));
       x += fcproj(gelu_tanh(fc(LN(x))));  logits = LN(x) @ wte^T
llama: x = wte[in]; per layer  x += proj(attn(rope(RMS(x))));
       x += fcproj(silu(gate) * up) with gate | up = fc(RMS(x));
       logits = RMS(x) @ head^T (head = wte when tied)

Conventions shared with the C code (dev/INTERFACES.md): weights are
(out, in); qkv rows are NH query heads | NKV key heads | NKV value heads;
RoPE pairs element d with d + HD/2 at angle pos * theta^(-2d/HD); the llama
fc rows are gate (F) | up (F); logits have Vp = V rounded up to 128 columns
and the padded ones take no probability; the loss of a micro-batch is the
SUM of -log p(target) over targets != -1 (the caller divides by the count
over the whole global batch). Attention is causal inside each segment and
blind across segments: FlexAttention with a block mask built from
cu_seqlens, or torch.nn.attention.varlen.varlen_attn (bf16 only).

Parameters, their order and init mirror llmc/params.h; files mirror the
model checkpoint and batch dump formats of dev/INTERFACES.md "Files".
"""
import importlib
import inspect
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# ----------------------------------------------------------------- config

GPT2_VOCAB_SIZE = 50257
VOCAB_PAD_MULTIPLE = 128
GPT2_MAGIC, LLAMA_MAGIC = 20240326, 20261125
VERSION_FP32, VERSION_BF16 = 3, 5


@dataclass
class ModelConfig:
    family: str  # "gpt2" | "llama"
    num_layers: int
    channels: int
    num_heads: int
    num_kv_heads: int
    ffn_hidden: int
    vocab_size: int = GPT2_VOCAB_SIZE
    max_seq_len: int = 1024
    rope_theta: float = 500000.0
    norm_eps: float = 1e-5
    tied_embeddings: bool = True

    @property
    def head_dim(self):
        return self.channels // self.num_heads

    @property
    def padded_vocab_size(self):
        return -(-self.vocab_size // VOCAB_PAD_MULTIPLE) * VOCAB_PAD_MULTIPLE

    @property
    def qkv_width(self):
        return (self.num_heads + 2 * self.num_kv_heads) * self.head_dim

    @property
    def fc_width(self):
        return 2 * self.ffn_hidden if self.family == "llama" else self.ffn_hidden


LLAMA_BASES = {"llama:1B": (16, 2048, 32, 8, 8192), "llama:3B": (28, 3072, 24, 8, 8192),
               "llama:8B": (32, 4096, 32, 8, 14336)}
GPT2_WIDE_DEPTHS = {24: (1024, 16), 36: (1280, 20), 48: (1600, 25)}


def parse_descriptor(descriptor):
    """'gpt2:d12' or 'llama:1B,L=4,C=256,...' -> ModelConfig (the rules of llmc/config.h)."""
    base, *overrides = descriptor.split(",")
    if base.startswith("gpt2:d") and base[6:].isdigit():
        depth = int(base[6:])
        channels, heads = GPT2_WIDE_DEPTHS.get(depth, (64 * depth, depth))
        cfg = ModelConfig("gpt2", depth, channels, heads, heads, 4 * channels)
    elif base in LLAMA_BASES:
        L, C, NH, NKV, Fh = LLAMA_BASES[base]
        cfg = ModelConfig("llama", L, C, NH, NKV, Fh, max_seq_len=8192)
    else:
        raise ValueError(f"unknown model descriptor '{descriptor}'")
    ffn_explicit = False
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"model '{descriptor}': override '{item}' is not key=value")
        if key == "theta":
            cfg.rope_theta = float(value)
        elif key == "eps":
            cfg.norm_eps = float(value)
        elif key == "tied":
            cfg.tied_embeddings = int(value) != 0
        elif key == "NH":
            cfg.num_heads = int(value)
            if cfg.family == "gpt2":
                cfg.num_kv_heads = int(value)
        else:
            fields = {"L": "num_layers", "C": "channels", "NKV": "num_kv_heads", "F": "ffn_hidden",
                      "V": "vocab_size", "T": "max_seq_len"}
            if key not in fields:
                raise ValueError(f"model '{descriptor}': unknown override key '{key}'")
            setattr(cfg, fields[key], int(value))
            ffn_explicit |= key == "F"
    if cfg.family == "gpt2" and not ffn_explicit:
        cfg.ffn_hidden = 4 * cfg.channels
    if cfg.channels % cfg.num_heads or cfg.num_heads % cfg.num_kv_heads:
        raise ValueError(f"model '{descriptor}': heads must divide C and kv heads must divide heads")
    return cfg


# ------------------------------------------------------------- parameters

PARAM_NAMES = ["wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb", "ln2w", "ln2b",
               "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb", "lm_head"]
MATRIX_PARAMS = {"wte", "wpe", "qkvw", "attprojw", "fcw", "fcprojw", "lm_head"}  # weight decay applies
NORM_WEIGHTS = {"ln1w", "ln2w", "lnfw"}
RESIDUAL_PROJECTIONS = {"attprojw", "fcprojw"}


def param_shapes(cfg):
    """[(name, shape or None)] in llmc/params.h order; None = the family lacks it."""
    L, C, Vp, QKV = cfg.num_layers, cfg.channels, cfg.padded_vocab_size, cfg.qkv_width
    gpt2 = cfg.family == "gpt2"
    only_gpt2 = lambda shape: shape if gpt2 else None  # noqa: E731
    return [
        ("wte", (Vp, C)), ("wpe", only_gpt2((cfg.max_seq_len, C))),
        ("ln1w", (L, C)), ("ln1b", only_gpt2((L, C))),
        ("qkvw", (L, QKV, C)), ("qkvb", only_gpt2((L, QKV))),
        ("attprojw", (L, C, C)), ("attprojb", only_gpt2((L, C))),
        ("ln2w", (L, C)), ("ln2b", only_gpt2((L, C))),
        ("fcw", (L, cfg.fc_width, C)), ("fcb", only_gpt2((L, cfg.fc_width))),
        ("fcprojw", (L, C, cfg.ffn_hidden)), ("fcprojb", only_gpt2((L, C))),
        ("lnfw", (C,)), ("lnfb", only_gpt2((C,))),
        ("lm_head", None if cfg.tied_embeddings else (Vp, C)),
    ]


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def splitmix64(seed, first_call, count):
    """Outputs number first_call+1 .. first_call+count of llmc/rand.h's stream.
    splitmix64's state after k calls is start + k * golden, so any stretch of
    the stream can be computed at once."""
    with np.errstate(over="ignore"):
        start = np.uint64(seed) * _GOLDEN + np.uint64(0x632BE59BD9B4E019)
        z = start + np.arange(first_call + 1, first_call + count + 1, dtype=np.uint64) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def normal_samples(seed, first_call, count):
    """rng_normal: Box-Muller from two uniforms of 53 bits, one value per two calls."""
    bits = splitmix64(seed, first_call, 2 * count).reshape(count, 2)
    uniform = (bits >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
    u1 = np.maximum(uniform[:, 0], 1e-300)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(6.283185307179586 * uniform[:, 1])


def init_params(cfg, seed, chunk=1 << 24):
    """llmc/params.h param_init: {name: float32 numpy array}, the same numbers."""
    out, calls = {}, 0
    for name, shape in param_shapes(cfg):
        if shape is None:
            continue
        n = math.prod(shape)
        if name in NORM_WEIGHTS:
            w = np.ones(n, np.float32)
        elif name not in MATRIX_PARAMS:
            w = np.zeros(n, np.float32)
        else:
            std = 0.02 / math.sqrt(2.0 * cfg.num_layers) if name in RESIDUAL_PROJECTIONS else 0.02
            w = np.empty(n, np.float32)
            for lo in range(0, n, chunk):
                m = min(chunk, n - lo)
                w[lo:lo + m] = (std * normal_samples(seed, calls, m)).astype(np.float32)
                calls += 2 * m
        w = w.reshape(shape)
        if name in ("wte", "lm_head"):
            w[cfg.vocab_size:] = 0.0  # padded vocabulary rows carry no token
        out[name] = w
    return out


# ------------------------------------------------------------------ files

def _bf16_to_f32(raw):
    return (raw.astype(np.uint32) << np.uint32(16)).view(np.float32)


def load_checkpoint(path):
    """Model file of dev/INTERFACES.md "Files" -> (ModelConfig, {name: float32 array})."""
    with open(path, "rb") as f:
        header = np.frombuffer(f.read(1024), np.int32)
        if header.size != 256:
            raise ValueError(f"{path}: shorter than the 256-int header")
        magic, version = int(header[0]), int(header[1])
        if magic not in (GPT2_MAGIC, LLAMA_MAGIC) or version not in (VERSION_FP32, VERSION_BF16):
            raise ValueError(f"{path}: bad magic/version {magic}/{version}")
        T, V, L, NH, C, Vp = (int(x) for x in header[2:8])
        if magic == GPT2_MAGIC:
            cfg = ModelConfig("gpt2", L, C, NH, NH, 4 * C, vocab_size=V, max_seq_len=T)
        else:
            NKV, Fh, tied = (int(x) for x in header[8:11])
            theta, eps = (float(x) for x in header[11:13].view(np.float32))
            cfg = ModelConfig("llama", L, C, NH, NKV, Fh, vocab_size=V, max_seq_len=T,
                              rope_theta=theta, norm_eps=eps, tied_embeddings=bool(tied))
        if cfg.padded_vocab_size != Vp:
            raise ValueError(f"{path}: header Vp={Vp} but V={V} pads to {cfg.padded_vocab_size}")
        shapes = [(n, s) for n, s in param_shapes(cfg) if s is not None]
        total = sum(math.prod(s) for _, s in shapes)
        dtype = np.float32 if version == VERSION_FP32 else np.uint16
        flat = np.frombuffer(f.read(total * np.dtype(dtype).itemsize), dtype)
        if flat.size != total:
            raise ValueError(f"{path}: truncated: {flat.size} of {total} parameters")
        if f.read(1):
            raise ValueError(f"{path}: trailing bytes after {total} parameters")
    if dtype == np.uint16:
        flat = _bf16_to_f32(flat)
    params, at = {}, 0
    for name, shape in shapes:
        n = math.prod(shape)
        params[name] = flat[at:at + n].reshape(shape).copy()
        at += n
    return cfg, params


def read_batch_dump(path):
    """Yield the micro-batches of `train_gpt --dump-batches FILE`:
    dicts of B, T, inputs, targets, pos (N,) and cu_seqlens (S+1,), int32."""
    data = np.fromfile(path, np.int32)
    at = 0
    while at < data.size:
        if at + 3 > data.size:
            raise ValueError(f"{path}: truncated record header at int {at}")
        B, T, S = (int(x) for x in data[at:at + 3])
        N = B * T
        end = at + 3 + 3 * N + S + 1
        if B < 1 or T < 1 or S < 1 or S > N or end > data.size:
            raise ValueError(f"{path}: bad or truncated record at int {at} (B={B} T={T} S={S})")
        body = data[at + 3:end]
        cu = body[3 * N:]
        if cu[0] != 0 or cu[-1] != N or np.any(np.diff(cu) <= 0):
            raise ValueError(f"{path}: record at int {at}: cu_seqlens not 0 .. N strictly increasing")
        yield {"B": B, "T": T, "inputs": body[:N], "targets": body[N:2 * N], "pos": body[2 * N:3 * N],
               "cu_seqlens": cu}
        at = end


# -------------------------------------------------------------- attention
# A micro-batch's segments are described once and shared by every layer:
# a FlexAttention BlockMask ("flex", compiled: the fast path), a VarlenSegments
# for varlen_attn ("varlen", bf16 only), or a dense (N, N) boolean mask for
# scaled_dot_product_attention ("dense": plain, no compilation, N^2 memory).

@dataclass
class VarlenSegments:
    cu_seqlens: torch.Tensor  # (S+1,) int32 on the device
    max_seqlen: int


_compiled = {}


def _compiled_fn(name):
    """flex_attention / create_block_mask compiled once each: uncompiled,
    both materialise an N x N array."""
    if name not in _compiled:
        flex = importlib.import_module("torch.nn.attention.flex_attention")
        _compiled[name] = torch.compile(getattr(flex, name), dynamic=False)
    return _compiled[name]


def segment_mask(cu_seqlens, N, impl="flex"):
    """cu_seqlens (S+1,) -> what `attend` needs for this micro-batch."""
    cu = cu_seqlens.to(torch.int32)
    lengths = cu[1:] - cu[:-1]
    if impl == "varlen":
        return VarlenSegments(cu, int(lengths.max()))
    doc = torch.repeat_interleave(torch.arange(lengths.numel(), device=cu.device), lengths.long())
    if impl == "dense":
        token = torch.arange(N, device=cu.device)
        return (doc[:, None] == doc[None, :]) & (token[:, None] >= token[None, :])

    def same_segment_causal(b, h, q_idx, kv_idx):
        return (doc[q_idx] == doc[kv_idx]) & (q_idx >= kv_idx)

    return _compiled_fn("create_block_mask")(same_segment_causal, None, None, N, N, device=cu.device)


def attend(q, k, v, mask):
    """Causal attention inside segments: q (N, NH, HD), k, v (N, NKV, HD) -> (N, NH, HD)."""
    if isinstance(mask, VarlenSegments):
        return _varlen_causal(q, k, v, mask.cu_seqlens, mask.max_seqlen)
    if isinstance(mask, torch.Tensor):  # dense (N, N): True = may attend
        return _dense_causal(q, k, v, mask)
    # FlexAttention sees the micro-batch as one sequence (1, heads, N, HD); the mask cuts it
    out = _compiled_fn("flex_attention")(q.transpose(0, 1)[None], k.transpose(0, 1)[None],
                                         v.transpose(0, 1)[None], block_mask=mask,
                                         enable_gqa=q.shape[1] != k.shape[1])
    return out[0].transpose(0, 1)


# scaled_dot_product_attention takes GQA (enable_gqa) from torch 2.5 on
_SDPA_HAS_GQA = tuple(int(part) for part in torch.__version__.split(".")[:2]) >= (2, 5)


def _dense_causal(q, k, v, mask):
    """Attention under a dense (N, N) mask: SDPA where this torch has GQA, else the
    formula itself, softmax(q k^T / sqrt(HD) where allowed) v, kv heads shared by copying."""
    q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # (heads, N, HD)
    if _SDPA_HAS_GQA:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=q.shape[0] != k.shape[0])
    else:
        repeat = q.shape[0] // k.shape[0]
        k, v = k.repeat_interleave(repeat, dim=0), v.repeat_interleave(repeat, dim=0)
        scores = (q @ k.transpose(1, 2)) / math.sqrt(q.shape[-1])
        out = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ v
    return out.transpose(0, 1)


def _varlen_causal(q, k, v, cu, max_seqlen):
    from torch.nn.attention.varlen import varlen_attn
    q, k, v = (t.to(torch.bfloat16) for t in (q, k, v))  # flash attention takes bf16 only
    repeat = q.shape[1] // k.shape[1]  # varlen_attn in torch 2.11 has no GQA: share kv heads by copying
    if repeat > 1:
        k, v = k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)
    if "is_causal" in inspect.signature(varlen_attn).parameters:  # the torch 2.10 spelling
        return varlen_attn(q, k, v, cu, cu, max_seqlen, max_seqlen, is_causal=True)
    return varlen_attn(q, k, v, cu, cu, max_seqlen, max_seqlen, window_size=(-1, 0))


# ------------------------------------------------------------------ model

def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rope_tables(pos, head_dim, theta):
    """cos, sin of angle pos * theta^(-2d/HD), d < HD/2: (N, 1, HD/2) float32."""
    d = torch.arange(head_dim // 2, device=pos.device, dtype=torch.float64)
    angle = pos.to(torch.float64)[:, None] * theta ** (-2.0 * d / head_dim)
    return torch.cos(angle).float()[:, None, :], torch.sin(angle).float()[:, None, :]


def rope(x, cos, sin):
    """Rotate-half RoPE on (N, heads, HD): element d pairs with d + HD/2."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


class PackLM(nn.Module):
    """gpt2 or llama on packed micro-batches; parameters named as in params.h."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.params = nn.ParameterDict({name: nn.Parameter(torch.zeros(shape))
                                        for name, shape in param_shapes(cfg) if shape is not None})
        # added to the Vp logits: -inf on the padded columns, so they take no probability
        vocab_mask = torch.zeros(cfg.padded_vocab_size)
        vocab_mask[cfg.vocab_size:] = float("-inf")
        self.register_buffer("vocab_mask", vocab_mask, persistent=False)

    def load(self, arrays):
        """Copy {name: array} (init_params / load_checkpoint) into the parameters."""
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(torch.from_numpy(np.ascontiguousarray(arrays[name])))

    def ordered(self):
        """[(name, parameter)] in params.h order (ParameterDict iterates its keys sorted)."""
        return [(name, self.params[name]) for name in PARAM_NAMES if name in self.params]

    def flat_grads(self):
        """All gradients, concatenated in params.h order (zeros where unused)."""
        return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                          for _, p in self.ordered()])

    def norm(self, x, name, l=None):
        """LayerNorm (gpt2) or RMSNorm (llama) with weights P[name + 'w'] (layer l if given)."""
        cfg, P = self.cfg, self.params
        pick = (lambda t: t[l]) if l is not None else (lambda t: t)
        if cfg.family == "gpt2":
            return F.layer_norm(x, (cfg.channels,), pick(P[name + "w"]), pick(P[name + "b"]), cfg.norm_eps)
        return rms_norm(x, pick(P[name + "w"]), cfg.norm_eps)

    def linear(self, x, name, l):
        """x @ W^T + b with W = P[name + 'w'][l] and b = P[name + 'b'][l] (gpt2 only)."""
        P = self.params
        return F.linear(x, P[name + "w"][l], P[name + "b"][l] if self.cfg.family == "gpt2" else None)

    def block(self, l, x, mask, rope_cs):
        cfg = self.cfg
        NH, NKV, HD = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        qkv = self.linear(self.norm(x, "ln1", l), "qkv", l)
        q, k, v = qkv.split([NH * HD, NKV * HD, NKV * HD], dim=-1)
        q, k, v = q.view(-1, NH, HD), k.view(-1, NKV, HD), v.view(-1, NKV, HD)
        if rope_cs is not None:
            # RoPE's fp32 tables promote q, k to fp32 under bf16 autocast; attention takes them in
            # v's type, as train_gpt does (FlexAttention would otherwise see fp32 q, k with bf16 v)
            q, k = rope(q, *rope_cs).to(v.dtype), rope(k, *rope_cs).to(v.dtype)
        x = x + self.linear(attend(q, k, v, mask).reshape(-1, NH * HD), "attproj", l)

        fc = self.linear(self.norm(x, "ln2", l), "fc", l)
        if cfg.family == "gpt2":
            act = F.gelu(fc, approximate="tanh")
        else:
            gate, up = fc.split(cfg.ffn_hidden, dim=-1)
            act = F.silu(gate) * up
        return x + self.linear(act, "fcproj", l)

    def forward(self, inputs, pos, targets, mask):
        """inputs, pos, targets (N,) long; mask from segment_mask -> summed loss over targets != -1."""
        cfg, P = self.cfg, self.params
        x = P["wte"][inputs]
        rope_cs = None
        if cfg.family == "gpt2":
            x = x + P["wpe"][pos]
        else:
            rope_cs = rope_tables(pos, cfg.head_dim, cfg.rope_theta)
        for l in range(cfg.num_layers):
            x = self.block(l, x, mask, rope_cs)
        head = P["wte"] if cfg.tied_embeddings else P["lm_head"]
        logits = F.linear(self.norm(x, "lnf"), head).float() + self.vocab_mask
        return F.cross_entropy(logits, targets, ignore_index=-1, reduction="sum")
